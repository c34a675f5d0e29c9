"""Bad and odd MuData and SpatialData inputs to ``tl``, ``pp.spatial_context`` and ``pl.factors_spatial``."""

from functools import partial

import anndata as ad
import numpy as np
import pandas as pd

from lmf_omics import pl, pp, tl
from lmf_omics._modalities import MissingKeyError

from ..reliability import Case, counts_adata

MU_FIT = {"response": "prot", "fixed": "rna", "random": "rna:obs:batch", "n_factors": 3, "max_iter": 20}
MU_WRITES = ("obsm/X_lmf*", "varm/lmf_*", "uns/lmf*")
SD_FIT = {"response": "obsm:protein", "fixed": "X", "n_factors": 3, "max_iter": 20}


def _mudata(_tmp=None, edit=None, drop_protein=5):
    import mudata as md

    cells = counts_adata()
    rna = ad.AnnData(cells.X, obs=cells.obs[["batch"]].copy(), var=cells.var.copy())
    frame = cells.obsm["protein"].iloc[drop_protein:].astype(np.float64)
    prot = ad.AnnData(frame.to_numpy(), obs=pd.DataFrame(index=frame.index), var=pd.DataFrame(index=frame.columns))
    mdata = md.MuData({"rna": rna, "prot": prot})
    if edit is not None:
        edit(mdata)
    return {"mdata": mdata}


def _mu_fit(category, name, edit=None, error=None, match=None, check=None, **options):
    return Case(
        "tl.lmf",
        category,
        name,
        partial(_mudata, edit=edit),
        lambda i: tl.lmf(i["mdata"], **{**MU_FIT, **options}),
        error=error,
        match=match,
        writes=MU_WRITES if error is None else (),
        check=check,
    )


def _mu_pair(_tmp=None, query_kind="mudata"):
    reference = _mudata()["mdata"]
    tl.lmf(reference, **MU_FIT)
    query = _mudata(drop_protein=0)["mdata"] if query_kind == "mudata" else counts_adata()
    return {"adata": query, "reference": reference}


def _every_cell_coded(inputs, result):
    codes = inputs["mdata"].obsm["X_lmf"]
    assert codes.shape == (inputs["mdata"].n_obs, 3) and np.isfinite(codes).all()


def _duplicate_cell(mdata):
    names = list(mdata.mod["prot"].obs_names)
    names[1] = names[0]
    mdata.mod["prot"].obs_names = names


def _stale(mdata):
    mdata.mod["prot"].obs_names = [f"other{i}" for i in range(mdata.mod["prot"].n_obs)]


def _sdata(_tmp=None, instances=None):
    import geopandas as gpd
    import spatialdata as sd
    from shapely.geometry import Point
    from spatialdata.models import ShapesModel, TableModel

    cells = counts_adata()
    ids = np.arange(1, cells.n_obs + 1)
    frame = gpd.GeoDataFrame(geometry=[Point(*p) for p in cells.obsm["spatial"]], index=ids)
    frame["radius"] = 1.0
    del cells.obsm["spatial"]
    cells.obs["region"] = pd.Categorical(["spots"] * cells.n_obs)
    cells.obs["spot_id"] = ids if instances is None else instances(ids)
    table = TableModel.parse(cells, region="spots", region_key="region", instance_key="spot_id")
    return {"sdata": sd.SpatialData(shapes={"spots": ShapesModel.parse(frame)}, tables={"table": table})}


def _sd_case(entry, category, name, call, error, match, instances=None):
    return Case(entry, category, name, partial(_sdata, instances=instances), call, error=error, match=match)


CASES = [
    _mu_fit(
        "mismatched cells",
        "MuData: cells without protein are unobserved in the response",
        check=_every_cell_coded,
    ),
    _mu_fit("missing key", "MuData spec names no modality", error=ValueError, match="names no modality", fixed="atac"),
    _mu_fit("options", "AnnData spec 'X' given a MuData", error=ValueError, match=r"'<mod>' \(its X\)", fixed="X"),
    _mu_fit(
        "options", "MuData spec with a bad slot", error=ValueError, match="not a slot of modality", fixed="rna:foo"
    ),
    _mu_fit("options", "MuData spec not a string", error=TypeError, match="spec string, got int", fixed=3),
    _mu_fit(
        "missing key",
        "MuData mask_var column missing in a modality",
        error=MissingKeyError,
        match="'highly_variable' not found",
        mask_var="highly_variable",
    ),
    _mu_fit(
        "missing key", "MuData obs column absent", error=MissingKeyError, match="'donor' not found", random="obs:donor"
    ),
    _mu_fit(
        "duplicated names",
        "MuData modality names a cell twice",
        _duplicate_cell,
        error=ValueError,
        match="more than once.*make them unique",
    ),
    _mu_fit(
        "mismatched cells", "MuData not updated after a modality changed", _stale, error=ValueError, match="update"
    ),
    Case(
        "tl.transform",
        "options",
        "AnnData query of a MuData fit",
        partial(_mu_pair, query_kind="anndata"),
        lambda i: tl.transform(i["adata"], i["reference"]),
        error=TypeError,
        match="pass two of a kind",
    ),
    Case(
        "tl.predict",
        "options",
        "layer= with a MuData query",
        _mu_pair,
        lambda i: tl.predict(i["adata"], i["reference"], layer="predicted"),
        error=ValueError,
        match="leave layer=None",
    ),
    _sd_case(
        "tl.lmf",
        "missing key",
        "SpatialData without table_key",
        lambda i: tl.lmf(i["sdata"], **SD_FIT),
        ValueError,
        r"table_key=, one of \['table'\]",
    ),
    _sd_case(
        "tl.lmf",
        "missing key",
        "SpatialData table_key absent",
        lambda i: tl.lmf(i["sdata"], table_key="cells", **SD_FIT),
        MissingKeyError,
        "'cells' not found",
    ),
    _sd_case(
        "tl.lmf",
        "options",
        "SpatialData with copy=True",
        lambda i: tl.lmf(i["sdata"], table_key="table", copy=True, **SD_FIT),
        ValueError,
        "pass copy=False",
    ),
    _sd_case(
        "pp.spatial_context",
        "missing key",
        "SpatialData coordinate system absent",
        lambda i: pp.spatial_context(i["sdata"], table_key="table", coordinate_system="aligned"),
        ValueError,
        "coordinate systems \\['global'\\]",
    ),
    _sd_case(
        "pp.spatial_context",
        "mismatched cells",
        "SpatialData table names instances the shapes lack",
        lambda i: pp.spatial_context(i["sdata"], table_key="table"),
        ValueError,
        "instance ids must match",
        instances=lambda ids: ids + 1,
    ),
    _sd_case(
        "pl.factors_spatial",
        "missing key",
        "SpatialData without table_key (was an AttributeError)",
        lambda i: pl.factors_spatial(i["sdata"]),
        ValueError,
        "table_key=",
    ),
    Case(
        "tl.lmf",
        "options",
        "table_key with an AnnData",
        lambda _tmp: {"adata": counts_adata()},
        lambda i: tl.lmf(i["adata"], table_key="table", **SD_FIT),
        error=ValueError,
        match="leave table_key=None",
    ),
]
