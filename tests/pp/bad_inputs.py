"""Bad and odd inputs to the preprocessing helpers (``lmf_omics.pp``): the catalogue."""

from functools import partial

import numpy as np
import pandas as pd
from scipy import sparse

from lmf_omics import pp
from lmf_omics._modalities import MissingKeyError

from ..reliability import Case, at, counts_adata, duplicate_names, edit_x, protein, set_obs, split_x

NAN = "NaN/inf in a modality"


def _adata(_tmp=None, edit=None, n=40):
    adata = counts_adata(n=n)
    if edit is not None:
        edit(adata)
    return {"adata": adata}


def _helper(function, writes, defaults):
    """A case factory for one helper: ``(category, name, edit=None, error=None, match=None, check=None, **options)``."""

    def case(category, name, edit=None, error=None, match=None, check=None, n=40, **options):
        return Case(
            f"pp.{function.__name__}",
            category,
            name,
            partial(_adata, edit=edit, n=n),
            lambda i: function(i["adata"], **{**defaults, **options}),
            error=error,
            match=match,
            writes=writes if error is None else (),
            check=check,
        )

    return case


def _x(values):
    def edit(adata):
        adata.X = sparse.csr_matrix(values(adata.X.toarray()))

    return edit


def _set(where, value):
    def change(dense):
        dense[where] = value
        return dense

    return change


normalize = _helper(
    pp.normalize_rna, ("layers/lognorm", "var/*", "uns/hvg*", "uns/log1p*"), {"n_top_genes": 10, "key_added": "lognorm"}
)
clr = _helper(pp.clr, ("obsm/protein_clr",), {"source": "obsm:protein"})
covariates = _helper(pp.covariates, ("obsm/covariates", "uns/covariates*"), {"keys": ["batch", "depth"]})
spatial = _helper(
    pp.spatial_context,
    ("obsm/spatial_context", "obsp/spatial_context_*", "uns/spatial_context*"),
    {"source": "obsm:protein", "n_neighs": 4},
)


def _clr_kept_nan_row(inputs, result):
    values = inputs["adata"].obsm["protein_clr"].to_numpy()
    assert np.isnan(values[4]).all() and np.isfinite(np.delete(values, 4, axis=0)).all()
    expected = pp._protein.clr_matrix(np.delete(inputs["adata"].obsm["protein"].to_numpy(), 4, axis=0))
    np.testing.assert_allclose(np.delete(values, 4, axis=0), expected, rtol=1e-12)


CASES = [
    normalize(
        "bad counts",
        "a negative count",
        _x(_set((0, 0), -1.0)),
        ValueError,
        r"adata.X has negative values \(minimum -1\); normalize_rna needs raw, non-negative counts",
    ),
    normalize(
        "bad counts",
        "a NaN count",
        _x(_set((3, 2), np.nan)),
        ValueError,
        r"adata.X has 1 NaN or infinite value\(s\); normalize_rna needs finite counts",
    ),
    normalize(
        "bad counts",
        "an infinite count in a dense layer",
        lambda a: a.layers.__setitem__("counts", _set((5, 1), np.inf)(a.X.toarray())),
        ValueError,
        r"layers\['counts'\] has 1 NaN or infinite value\(s\) \(first in cell 'cell5'\)",
        layer="counts",
    ),
    normalize(
        "all-zero modality",
        "no counts at all",
        _x(np.zeros_like),
        ValueError,
        r"adata.X holds no counts \(every value is 0\)",
    ),
    normalize(
        "constant feature",
        "every count the same (no gene varies)",
        _x(np.ones_like),
        ValueError,
        r"highly variable genes: every cell of adata.X has the same profile .*pass n_top_genes=None",
    ),
    normalize("constant feature", "one gene with the same count everywhere", _x(_set((slice(None), 0), 5.0))),
    normalize(
        "single cell",
        "one cell with gene selection",
        n=1,
        error=ValueError,
        match=r"highly variable genes need at least 2 cells, adata has 1; pass n_top_genes=None",
    ),
    normalize("single cell", "one cell without gene selection", n=1, n_top_genes=None),
    normalize(
        "missing key",
        "a layer that is not there",
        layer="counts",
        error=MissingKeyError,
        match=r"layer='counts' not found in adata.layers; available: \['dense'\]",
    ),
    normalize(
        "missing key",
        "a batch column that is not there",
        batch_key="sample",
        error=MissingKeyError,
        match=r"batch_key='sample' not found in adata.obs; available: \['batch', 'depth'\]",
    ),
    normalize(
        "options",
        "n_top_genes above the genes",
        n_top_genes=31,
        error=ValueError,
        match=r"n_top_genes=31 must be an integer between 1 and 30",
    ),
    normalize(
        "options",
        "key_added with '/'",
        key_added="log/norm",
        error=ValueError,
        match=r"key_added='log/norm' contains '/'",
    ),
    normalize(
        "options",
        "target_sum=True (a boolean, not a number)",
        target_sum=True,
        error=ValueError,
        match=r"target_sum=True must be a positive number",
    ),
    normalize(
        "options",
        "target_sum as text",
        target_sum="1e4",
        error=ValueError,
        match=r"target_sum='1e4' must be a positive number",
    ),
    normalize("dtype", "integer counts", _x(lambda d: d.astype(np.int64))),
    normalize("sparse format", "CSC counts", lambda a: setattr(a, "X", a.X.tocsc())),
    normalize("duplicated names", "repeated obs names", duplicate_names()),
    clr(
        "bad counts",
        "a negative protein count",
        protein(at(2, 1, -1.0)),
        ValueError,
        r"source='obsm:protein' has negative values \(minimum -1\); clr needs raw, non-negative counts",
    ),
    clr(
        "bad counts",
        "an infinite protein count",
        protein(at(2, 1, np.inf)),
        ValueError,
        r"source='obsm:protein' has 1 NaN or infinite value\(s\) \(first in cell 'cell2'\)",
    ),
    clr(
        NAN,
        "one NaN in a cell's counts",
        protein(at(6, 0, np.nan)),
        ValueError,
        r"has 1 NaN or infinite value\(s\) \(first in cell 'cell6'\).*a cell without these counts is a row of NaN",
    ),
    clr(
        NAN,
        "a cell without protein (a row of NaN) stays NaN",
        protein(at(4, slice(None), np.nan)),
        check=_clr_kept_nan_row,
    ),
    clr(
        "missing key",
        "an obsm key that is not there",
        source="obsm:adt",
        error=MissingKeyError,
        match=r"'adt' not found in adata.obsm; available: \['protein', 'spatial'\]",
    ),
    clr(
        "options",
        "an obs source",
        source="obs:depth",
        error=ValueError,
        match=r"source='obs:depth' must be 'obsm:<key>', 'layer:<name>' or 'X'",
    ),
    clr(
        "all-zero modality",
        "all-zero counts map to zero",
        protein(lambda f: f * 0),
        check=lambda i, r: np.testing.assert_array_equal(i["adata"].obsm["protein_clr"].to_numpy(), 0.0),
    ),
    clr("single cell", "one cell", n=1),
    clr(
        "DataFrame",
        "integer column names (kept)",
        protein(lambda f: f.set_axis(range(6), axis=1)),
        check=lambda i, r: np.testing.assert_array_equal(i["adata"].obsm["protein_clr"].columns, range(6)),
    ),
    clr("DataFrame", "nullable Int64 counts", protein(lambda f: f.astype("Int64"))),
    clr(
        "sparse format",
        "sparse counts stay sparse",
        lambda a: a.obsm.__setitem__("protein", sparse.csr_matrix(a.obsm["protein"].to_numpy(np.float64))),
        check=lambda i, r: np.testing.assert_equal(sparse.issparse(i["adata"].obsm["protein_clr"]), True),
    ),
    covariates(
        "obs column",
        "a numeric covariate with a missing value",
        set_obs("depth", lambda a: a.obs["depth"].mask(a.obs_names == "cell3")),
        ValueError,
        r"numeric covariate 'depth' has 1 NaN or infinite value\(s\), the first for cell 'cell3'; fill or drop",
    ),
    covariates(
        "obs column",
        "a covariate with no values",
        set_obs("depth", lambda a: np.nan),
        ValueError,
        r"numeric covariate 'depth' has 40 NaN or infinite value\(s\)",
    ),
    covariates(
        "obs column",
        "an identifier column",
        set_obs("barcode", lambda a: a.obs_names.to_numpy()),
        keys=["barcode"],
        max_levels=20,
        error=ValueError,
        match=r"obs column 'barcode' has 40 levels \(> max_levels=20\); is it an identifier",
    ),
    covariates(
        "obs column", "a text column is one-hot encoded", set_obs("donor", lambda a: ["d1", "d2"] * 20), keys=["donor"]
    ),
    covariates(
        "constant feature",
        "a constant numeric column is only centred",
        set_obs("depth", lambda a: 3.0),
        check=lambda i, r: np.testing.assert_array_equal(i["adata"].obsm["covariates"]["depth"], 0.0),
    ),
    covariates(
        "missing key",
        "an obs column that is not there",
        keys=["donor"],
        error=MissingKeyError,
        match=r"keys='donor' not found in adata.obs; available: \['batch', 'depth'\]",
    ),
    covariates("single cell", "one cell", n=1),
    covariates("duplicated names", "repeated obs names", duplicate_names()),
    covariates(
        "duplicated names",
        "a column named twice",
        keys=["batch", "batch"],
        error=ValueError,
        match=r"keys=\['batch', 'batch'\] names a column more than once",
    ),
    spatial(
        NAN,
        "a NaN coordinate",
        lambda a: a.obsm["spatial"].__setitem__((0, 0), np.nan),
        ValueError,
        r"obsm\['spatial'\] has NaN or infinite coordinates",
    ),
    spatial(
        NAN,
        "a NaN in the averaged modality",
        protein(at(7, 2, np.nan)),
        ValueError,
        r"source='obsm:protein' has NaN or infinite values, the first in cell 'cell7'; the niche mean would "
        r"spread them",
    ),
    spatial(
        "missing key",
        "no coordinates",
        spatial_key="xy",
        error=MissingKeyError,
        match=r"spatial_key='xy' not found in adata.obsm; available: \['protein', 'spatial'\]",
    ),
    spatial(
        "single cell",
        "fewer spots than neighbours",
        n=4,
        error=ValueError,
        match=r"section 'all spots' has 4 spots; n_neighs=4 needs more than 4 in every section",
    ),
    spatial("duplicated names", "repeated obs names", duplicate_names()),
    spatial(
        "duplicated names",
        "repeated feature names of a dense source (names kept in uns)",
        duplicate_names("var"),
        source="layer:dense",
        check=lambda i, r: np.testing.assert_array_equal(
            i["adata"].uns["spatial_context"]["features"][:2], ["gene0", "gene0"]
        ),
    ),
    spatial("DataFrame", "integer column names in the source", protein(lambda f: f.set_axis(range(6), axis=1))),
    spatial(
        "options",
        "radius without method='radius'",
        radius=5.0,
        error=ValueError,
        match=r"radius=5.0 is only used with method='radius', not method='knn'",
    ),
]


def _image_adata(_tmp=None, duplicate=False):
    adata = counts_adata(n=12)
    adata.obsm["spatial"] = np.column_stack([np.arange(12) % 4 * 20 + 20, np.arange(12) // 4 * 20 + 20]).astype(float)
    adata.obsm["far"] = adata.obsm["spatial"] + 1000.0
    if duplicate:
        duplicate_names()(adata)
    rng = np.random.default_rng(0)
    return {"adata": adata, "image": rng.integers(0, 255, (100, 100, 3)).astype(np.uint8)}


def _image(inputs, **options):
    return pp.image_features(inputs["adata"], img=inputs["image"], spot_diameter=10.0, features="summary", **options)


IMAGE = ("obsm/img_features", "uns/img_features*")
CASES += [
    Case(
        "pp.image_features",
        "duplicated names",
        "repeated obs names",
        partial(_image_adata, duplicate=True),
        _image,
        writes=IMAGE,
        check=lambda i, r: np.testing.assert_equal(
            i["adata"].obsm["img_features"].index.tolist(), i["adata"].obs_names.tolist()
        ),
    ),
    Case(
        "pp.image_features",
        "missing key",
        "no coordinates",
        _image_adata,
        partial(_image, spatial_key="xy"),
        error=MissingKeyError,
        match=r"spatial_key='xy' not found in adata.obsm",
    ),
    Case(
        "pp.image_features",
        "options",
        "coordinates outside the image",
        _image_adata,
        partial(_image, spatial_key="far"),
        error=ValueError,
        match=r"12 spot\(s\) lie outside the 100 × 100 image .*set scale=",
    ),
]


# second round: corrupt sparse counts, views, dtypes that lie, choices, degenerate geometry
_split_x = split_x(0.5)


def _lognorm_as_clean(inputs, result):
    clean = counts_adata()
    pp.normalize_rna(clean, n_top_genes=10, key_added="lognorm")
    got = inputs["adata"].layers["lognorm"]
    np.testing.assert_allclose(got.toarray(), clean.layers["lognorm"].toarray(), rtol=1e-6)


def _parent(_tmp=None):
    return {"parent": counts_adata()}


def _on_view(function, **options):
    def call(inputs):
        view = inputs["parent"][:30]
        function(view, **options)
        assert not view.is_view

    return call


def _sparse_protein(edit):
    def change(adata):
        matrix = sparse.csr_matrix(adata.obsm["protein"].to_numpy(dtype=np.float64))
        edit(matrix)
        adata.obsm["protein"] = matrix

    return change


def _dense_float16(adata):
    """Dense float16 counts (scipy has no float16 sparse) whose cell totals exceed float16's 65504."""
    dense = adata.X.toarray()
    adata.X = (dense * (60000 / dense.max())).astype(np.float16)


def _on_a_line(adata):
    adata.obsm["spatial"][:, 1] = 3 * adata.obsm["spatial"][:, 0] + 1


def _one_section_on_a_line(adata):
    adata.obs["section"] = pd.Categorical(np.where(np.arange(adata.n_obs) < 20, "s1", "s2"))
    adata.obsm["spatial"][:20, 1] = 5.0


CASES += [
    normalize("sparse format", "split and unsorted entries (a log of each half)", _split_x, check=_lognorm_as_clean),
    normalize(
        "sparse format",
        "a column index beyond the shape",
        edit_x(lambda X: X.indices.__setitem__(4, 10**6)),
        error=ValueError,
        match=r"adata.X is a corrupt CSR matrix: column index 1000000 of row 0 is outside 0\.\.29",
    ),
    normalize(
        "sparse format",
        "a decreasing indptr",
        edit_x(lambda X: X.indptr.__setitem__(2, X.indptr[6])),
        error=ValueError,
        match=r"adata.X is a corrupt CSR matrix: indptr decreases after row 2",
    ),
    normalize(
        "dtype",
        "float16 counts whose totals overflow float16",
        _dense_float16,
        check=lambda i, r: np.testing.assert_array_equal(i["adata"].layers["lognorm"].sum(axis=1) > 0, True),
    ),
    Case(
        "pp.normalize_rna",
        "view",
        "a view: log values never written into the parent",
        _parent,
        _on_view(pp.normalize_rna, n_top_genes=10),
    ),
    Case("pp.clr", "view", "a view; the parent untouched", _parent, _on_view(pp.clr, source="obsm:protein")),
    Case("pp.covariates", "view", "a view; the parent untouched", _parent, _on_view(pp.covariates, keys="batch")),
    Case(
        "pp.spatial_context",
        "view",
        "a view; the parent untouched",
        _parent,
        _on_view(pp.spatial_context, source="obsm:protein", n_neighs=4),
    ),
    clr("options", "axis=True (True == 1)", axis=True, error=ValueError, match=r"axis=True is not one of \[0, 1\]"),
    clr(
        "sparse format",
        "sparse counts with a row index beyond the shape",
        _sparse_protein(lambda m: m.indices.__setitem__(0, 77)),
        error=ValueError,
        match=r"source='obsm:protein' is a corrupt CSR matrix: column index 77 of row 0 is outside 0\.\.5",
    ),
    covariates(
        "dtype",
        "numbers stored as object dtype",
        set_obs("dose", lambda a: pd.array(np.arange(a.n_obs) % 4, dtype=object)),
        keys=["dose"],
        error=ValueError,
        match=r"keys=\['dose'\]: obs column 'dose' holds object values that are not strings",
    ),
    covariates(
        "dtype",
        "complex numbers",
        set_obs("phase", lambda a: np.arange(a.n_obs) + 1j),
        keys=["phase"],
        error=ValueError,
        match=r"obs column 'phase' holds complex numbers",
    ),
    covariates(
        "dtype",
        "durations",
        set_obs("lag", lambda a: pd.to_timedelta(np.arange(a.n_obs), unit="s")),
        keys=["lag"],
        error=ValueError,
        match=r"obs column 'lag' holds timedelta64\[[mun]?s\] values",  # the unit is pandas': ns in 2, us in 3
    ),
    spatial(
        "options",
        "Delaunay on collinear spots",
        _on_a_line,
        method="delaunay",
        error=ValueError,
        match=r"method='delaunay' needs spots that are not all on one line, but section 'all spots' has 40 spot",
    ),
    spatial(
        "options",
        "Delaunay with one section on a line",
        _one_section_on_a_line,
        method="delaunay",
        library_key="section",
        error=ValueError,
        match=r"section 's1' has 20 spot\(s\) on a line",
    ),
    spatial(
        "options",
        "coordinates of one column",
        lambda a: a.obsm.__setitem__("spatial", a.obsm["spatial"][:, :1]),
        error=ValueError,
        match=r"obsm\['spatial'\] must hold numeric coordinates \(cells × 2\), got dtype float64 and shape \(40, 1\)",
    ),
    spatial(
        "sparse format",
        "a sparse source with an index beyond the shape",
        edit_x(lambda X: X.indices.__setitem__(1, 500)),
        source="X",
        error=ValueError,
        match=r"source='X' is a corrupt CSR matrix: column index 500",
    ),
]
