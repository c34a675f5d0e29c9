"""Every key LMF writes into an AnnData, derived from ``key_added`` in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ._core.validation import ROLES


def check_key_added(key_added, name: str = "key_added") -> None:
    """A key to write must be a non-empty string an h5ad file stores as it is.

    Refused: ``'/'`` (a path in HDF5), ``'.'`` and ``'..'`` (HDF5's own group: the fields would go
    to the root of ``uns``), control characters such as NUL (HDF5 cuts the name there, so several
    keys would become one) and surrounding spaces.
    """
    if not isinstance(key_added, str) or not key_added:
        raise ValueError(f"{name}={key_added!r} must be a non-empty string")
    if "/" in key_added:
        raise ValueError(
            f"{name}={key_added!r} contains '/', which an h5ad file cannot store in a key; choose a name without it"
        )
    if key_added in (".", ".."):
        raise ValueError(f"{name}={key_added!r} names the group itself in an h5ad file; choose a name, e.g. 'lmf'")
    if any(ord(c) < 32 or ord(c) == 127 for c in key_added) or key_added != key_added.strip():
        raise ValueError(
            f"{name}={key_added!r} holds control characters or surrounding spaces, which an h5ad file does not keep "
            "as they are; choose a plain name"
        )


def is_transfer(value) -> bool:
    """Whether an ``uns`` entry is what :func:`lmf_omics.tl.transform` or ``predict`` wrote beside their results."""
    params = value.get("params") if isinstance(value, Mapping) else None
    return isinstance(params, Mapping) and "reference_key" in params


def refuse_foreign(adata, key_added: str, name: str, *, ours, uns=(), obsm=(), varm=(), layers=()) -> None:
    """Refuse to write over entries LMF did not write (``ours``: whether the existing entries are LMF's).

    E.g. ``key_added="spatial"`` would replace ``uns["spatial"]`` (images, scale factors) and
    ``tl.predict(key_added="protein")`` a measured ``obsm["protein"]``. The user removes them first to
    replace them on purpose.
    """
    if ours:
        return
    slots = {"uns": uns, "obsm": obsm, "varm": varm, "layers": layers}
    found = [f"{slot}[{key!r}]" for slot, keys in slots.items() for key in keys if key in getattr(adata, slot)]
    if found:
        slot, _, rest = found[0].partition("[")
        raise ValueError(
            f"{name}={key_added!r} would overwrite {', '.join(found)}, which LMF did not write; pass another "
            f"{name}, or delete it first (del adata.{slot}[{rest[:-1]}]) to replace it"
        )


def is_fit(value) -> bool:
    """Whether an ``uns`` entry holds a fit stored by :func:`lmf_omics.tl.lmf` (not e.g. transform's params)."""
    return isinstance(value, Mapping) and "params" in value and "modalities" in value


@dataclass(frozen=True)
class Keys:
    """Names under which a fit called ``key_added`` is stored.

    ``obsm[combined]`` holds K + H, ``obsm[fixed]`` K and ``obsm[random]`` H; ``varm[loadings(role)]``
    and ``varm[encoder(role)]`` the loadings and encoder of a var-aligned modality; ``uns[uns]``
    everything else; ``uns[transformed]`` what :func:`lmf_omics.tl.transform` used; ``obsm[predicted]``
    the responses :func:`lmf_omics.tl.predict` writes; ``uns[enrichment(role)]`` the set scores of
    :func:`lmf_omics.tl.enrich`.
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

    def encoder(self, role: str) -> str:
        """``varm`` key of a var-aligned modality's encoder (its code ``= Ã @ encoder``)."""
        return f"{self.key_added}_encoder_{role}"

    @property
    def transformed(self) -> str:
        """``uns`` key of the parameters :func:`lmf_omics.tl.transform` writes beside the codes."""
        return f"{self.key_added}_transform"

    @property
    def predicted(self) -> str:
        """``obsm`` (or ``layers``) key of predicted responses."""
        return f"{self.key_added}_predicted"

    def enrichment(self, role: str) -> str:
        """``uns`` key of :func:`lmf_omics.tl.enrich`'s scores of ``role``'s loadings."""
        return f"{self.key_added}_enrich_{role}"

    @property
    def varm_keys(self) -> tuple[str, ...]:
        return tuple(key(role) for role in ROLES for key in (self.loadings, self.encoder))

    @property
    def obsm_keys(self) -> tuple[str, str, str]:
        return self.combined, self.fixed, self.random
