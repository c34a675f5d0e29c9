"""Every key LMF writes into an AnnData, derived from ``key_added`` in one place."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("response", "fixed", "random")


@dataclass(frozen=True)
class Keys:
    """Names under which a fit called ``key_added`` is stored.

    ``obsm[combined]`` holds K + H, ``obsm[fixed]`` K and ``obsm[random]`` H; ``varm[loadings(role)]``
    the loadings of a var-aligned modality; ``uns[uns]`` everything else.
    """

    key_added: str = "lmf"

    @property
    def combined(self) -> str:
        return f"X_{self.key_added}"

    @property
    def fixed(self) -> str:
        return f"X_{self.key_added}_fixed"

    @property
    def random(self) -> str:
        return f"X_{self.key_added}_random"

    @property
    def uns(self) -> str:
        return self.key_added

    def loadings(self, role: str) -> str:
        return f"{self.key_added}_loadings_{role}"

    @property
    def obsm_keys(self) -> tuple[str, str, str]:
        return self.combined, self.fixed, self.random
