library(testthat)
library(lmfomics)

test_check("lmfomics")
