# The Python side: which Python, its set-up, and every call into it (errors and warnings in R words).

# The Python module lmf_omics.r, imported on first use (reticulate's delay_load, as keras and
# tensorflow do): library(lmfomics) never starts Python, so install_lmf_python() can run first.
.lmf <- new.env(parent = emptyenv())

.onLoad <- function(libname, pkgname) {
  .lmf$module <- reticulate::import("lmf_omics.r", delay_load = list(
    environment = .lmf_envname(),
    on_load = .lmf_check_python,
    on_error = .lmf_import_failed
  ))
  # RETICULATE_PYTHON_ENV rather than use_virtualenv(): reticulate 1.28 looks for a Poetry project (a
  # pyproject.toml in the working directory) before use_virtualenv()'s choice, and warns when it finds one
  unset <- function(name) is.na(Sys.getenv(name, NA))
  if (unset("RETICULATE_PYTHON") && unset("RETICULATE_PYTHON_ENV") && reticulate::virtualenv_exists(.lmf_envname())) {
    Sys.setenv(RETICULATE_PYTHON_ENV = dirname(dirname(reticulate::virtualenv_python(.lmf_envname()))))
  }
}

.lmf_envname <- function() getOption("lmfomics.envname", "lmf-omics")

# Debian's Python first: its binary does not load libpython, so pip run from R (whose LD_LIBRARY_PATH holds
# the system's libpython) cannot pick up a libpython of another build, as a python3 from pyenv would.
.lmf_default_python <- function() {
  if (file.exists("/usr/bin/python3")) "/usr/bin/python3" else unname(Sys.which("python3"))
}

#' Set up the Python side of lmfomics
#'
#' Creates a Python virtual environment (by default `lmf-omics` under
#' [reticulate::virtualenv_root()], where `library(lmfomics)` finds it) and installs
#' the Python package lmf-omics into it with pinned versions of its dependencies
#' (NumPy < 2, as Debian's reticulate 1.28 needs; no squidpy, which the R package does not
#' use), as `keras::install_keras()` and `tensorflow::install_tensorflow()` do. Run it once,
#' then restart R. A Python chosen with `RETICULATE_PYTHON` is used instead when that is
#' set (it needs lmf-omics and NumPy < 2 with reticulate 1.28).
#'
#' @param package What pip installs: a checkout of lmf-omics (a folder), a wheel, or a pip
#'   requirement.
#' @param envname Name of (or path to) the virtual environment.
#' @param python The Python that creates it; by default Debian's `/usr/bin/python3` (with
#'   the `python3-venv` and `libpython3.11` packages) where it exists, else `python3` on the `PATH`.
#' @param constraints A pip constraints file pinning the dependencies; the default ships
#'   with the package.
#' @param force Delete and recreate an existing environment.
#' @return The path of the environment's Python, invisibly.
#' @seealso [lmf_python_available()]
#' @examples
#' \dontrun{
#' # from a checkout of lmf-omics:
#' lmfomics::install_lmf_python(".")
#' }
#' @export
install_lmf_python <- function(package = "lmf-omics", envname = .lmf_envname(), python = NULL,
                               constraints = system.file("python", "constraints.txt", package = "lmfomics"),
                               force = FALSE) {
  .lmf_check_string(package, "package")
  .lmf_check_string(envname, "envname")
  python <- if (is.null(python)) .lmf_default_python() else python
  if (!nzchar(python) || !file.exists(python)) {
    stop("install_lmf_python: no Python found (python = '", python, "'); on Debian: ",
         "apt-get install --no-install-recommends python3-venv", call. = FALSE)
  }
  if (dir.exists(package)) package <- normalizePath(package)
  if (isTRUE(force) && reticulate::virtualenv_exists(envname)) reticulate::virtualenv_remove(envname, confirm = FALSE)
  if (!reticulate::virtualenv_exists(envname)) reticulate::virtualenv_create(envname, python = python, packages = NULL)
  reticulate::virtualenv_install(envname, packages = package, pip_options = c("--constraint", constraints))
  path <- reticulate::virtualenv_python(envname)
  message("lmf-omics is installed in ", path, "; restart R, then library(lmfomics)")
  invisible(path)
}

#' Is the Python side of lmfomics ready?
#'
#' `TRUE` when a Python with lmf-omics can be used: `RETICULATE_PYTHON`, or the environment
#' made by [install_lmf_python()]. It starts that Python (once per R session) and checks that
#' NumPy suits this reticulate.
#'
#' @return `TRUE` or `FALSE`.
#' @examples
#' lmf_python_available()
#' @export
lmf_python_available <- function() {
  isTRUE(tryCatch({
    .lmf_module()$ENTRY_POINTS
    TRUE
  }, error = function(e) FALSE))
}

.lmf_module <- function() .lmf$module

# Run after lmf_omics.r is imported: NumPy 2 breaks Debian's reticulate 1.28 at the first matrix (reticulate
# supports NumPy 2 from 1.36 on).
.lmf_check_python <- function() {
  config <- reticulate::py_config()
  numpy <- config$numpy$version
  if (utils::packageVersion("reticulate") < "1.36" && !is.null(numpy) && numeric_version(numpy) >= "2") {
    stop("lmfomics: the Python in use (", config$python, ") has NumPy ", numpy, ", but reticulate ",
         utils::packageVersion("reticulate"), " needs NumPy < 2. Run lmfomics::install_lmf_python() ",
         "and restart R (or point RETICULATE_PYTHON at a Python with numpy<2)", call. = FALSE)
  }
}

.lmf_import_failed <- function(error) {
  python <- tryCatch(reticulate::py_config()$python, error = function(e) "none found")
  stop("lmfomics: the Python module lmf_omics cannot be imported from Python '", python, "' (",
       trimws(conditionMessage(error)), "). Run lmfomics::install_lmf_python() (from a checkout of ",
       "lmf-omics: lmfomics::install_lmf_python(\".\")) and restart R, or set RETICULATE_PYTHON to a ",
       "Python that has lmf-omics and numpy<2", call. = FALSE)
}

# One call into Python (lmf_omics.r.call): Python's warnings become R warnings, its exceptions R errors.
.lmf_call <- function(entry, arguments, renames = character()) {
  outcome <- tryCatch(
    .lmf_module()$call(entry, arguments),
    error = function(e) {
      if (inherits(e, "lmfomics_error")) stop(e)
      .lmf_abort(paste0("could not hand the arguments to Python: ", conditionMessage(e)))
    }
  )
  for (warned in outcome$warnings) .lmf_warn(.lmf_r_words(warned$message, renames))
  if (!isTRUE(outcome$ok)) .lmf_abort(.lmf_r_words(outcome$message, renames), outcome$type)
  outcome$value
}

# Python's option names as the R user typed them (e.g. n_factors -> ncomponents).
.lmf_r_words <- function(message, renames) {
  for (python in names(renames)) {
    message <- gsub(paste0("\\b", python, "\\s*=\\s*"), paste0(renames[[python]], " = "), message, perl = TRUE)
    message <- gsub(paste0("\\b", python, "\\b"), renames[[python]], message, perl = TRUE)
  }
  message
}

# Conditions without a call: the message names the argument as the R user gave it.
.lmf_abort <- function(message, type = NULL) {
  classes <- c(if (!is.null(type)) paste0("lmfomics_", type), "lmfomics_error", "error", "condition")
  stop(structure(class = classes, list(message = message, call = NULL)))
}

.lmf_warn <- function(message) {
  warning(structure(class = c("lmfomics_warning", "warning", "condition"), list(message = message, call = NULL)))
}
