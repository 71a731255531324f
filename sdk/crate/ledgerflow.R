# Ledgerflow's R helper: save an R prediction function as a model directory that Python
# loads with `ledgerflow.pyfunc.load_model` and `ledgerflow serve` serves.
#
#   source(system("ledgerflow crate-helper", intern = TRUE))
#   fit <- lm(y ~ x, data = train)
#   ledgerflow_save_model(function(df) predict(fit, newdata = df), "model",
#                         input_example = head(train))
#
# Base R and jsonlite only (Debian: r-base-core, r-cran-jsonlite). The layout is MLflow's
# `crate` flavor: `crate.bin` is an RDS holding serialize() of the function, so MLflow's R
# package loads it too; see docs/models.md for where this differs from MLflow's.

ledgerflow_crate_version <- "0.1.0"

# Save `predict_fn` (a function of one data.frame answering its predictions) at `path`.
# Named arguments in `...` are put into the function's environment (as carrier::crate
# does); objects of the global environment the function refers to (a fitted model, helper
# functions) are captured too, so the saved function needs nothing but the packages named
# in `packages` (attached before predicting, their versions recorded).
ledgerflow_save_model <- function(predict_fn, path, input_example = NULL,
                                  packages = character(0), ...) {
  if (!is.function(predict_fn)) {
    stop("ledgerflow_save_model saves a function of a data.frame, not a ",
         class(predict_fn)[1], call. = FALSE)
  }
  if (!requireNamespace("jsonlite", quietly = TRUE)) {
    stop("ledgerflow_save_model needs the jsonlite package: ",
         "apt-get install r-cran-jsonlite (or install.packages('jsonlite'))", call. = FALSE)
  }
  packages <- as.character(packages)
  for (p in packages) {
    if (!requireNamespace(p, quietly = TRUE)) stop("package '", p, "' is not installed",
                                                   call. = FALSE)
  }
  if (file.exists(path) && (!dir.exists(path) || length(list.files(path, all.files = TRUE,
                                                                     no.. = TRUE)) > 0)) {
    stop("cannot save a model to '", path, "': it already exists and is not empty",
         call. = FALSE)
  }
  dir.create(path, recursive = TRUE, showWarnings = FALSE)
  fn <- .lf_capture(predict_fn, list(...))
  class(fn) <- c("crate", "function")  # what MLflow's R mlflow_predict dispatches on
  saveRDS(serialize(fn, NULL), file.path(path, "crate.bin"))

  spec <- list()
  if (!is.null(input_example)) {
    example <- as.data.frame(input_example, stringsAsFactors = FALSE)
    .lf_write_example(example, path)
    spec$saved_input_example_info <- list(
      artifact_path = "input_example.json", pandas_orient = "split",
      serving_input_path = "serving_input_example.json", type = "dataframe")
    outputs <- tryCatch(.lf_output_schema(fn(example)), error = function(e) {
      warning("could not infer the output schema from the input example: ",
              conditionMessage(e), call. = FALSE)
      NULL
    })
    spec$signature <- list(inputs = .lf_input_schema(example), outputs = outputs,
                           params = NULL)
  }
  .lf_write_environment(path, packages)
  r_packages <- stats::setNames(
    lapply(packages, function(p) as.character(utils::packageVersion(p))), packages)
  spec$flavors <- list(
    crate = list(version = ledgerflow_crate_version, model = "crate.bin",
                 r_version = .lf_r_version(), r_packages = r_packages),
    python_function = list(
      loader_module = "ledgerflow.crate", data = "crate.bin",
      env = list(conda = "conda.yaml", virtualenv = "python_env.yaml")))
  spec$is_signature_from_type_hint <- FALSE
  spec$type_hint_from_example <- FALSE
  spec$model_size_bytes <- sum(file.size(list.files(path, recursive = TRUE,
                                                    full.names = TRUE)))
  spec$model_uuid <- paste(sample(c(0:9, letters[1:6]), 32, replace = TRUE), collapse = "")
  spec$utc_time_created <- format(as.POSIXlt(Sys.time(), tz = "UTC"), "%Y-%m-%d %H:%M:%OS6")
  writeLines(.lf_yaml(spec[sort(names(spec))]), file.path(path, "MLmodel"))
  invisible(path)
}

# The function saved in a crate.bin: Ledgerflow's and MLflow's (an RDS of serialize()'d
# bytes) and a plain RDS of the function alike.
ledgerflow_read_crate <- function(file) {
  x <- readRDS(file)
  if (is.raw(x)) x <- unserialize(x)
  if (!is.function(x)) stop(file, " holds a ", class(x)[1], ", not a function", call. = FALSE)
  x
}

# The worker `ledgerflow.crate` starts (`Rscript --vanilla worker.R crate.bin pkg...`):
# one JSON request a line on stdin (a table as columns), one JSON answer a line on stdout.
# What the model prints goes to stderr, so it cannot garble the answers.
ledgerflow_worker <- function(model_file, packages = character(0)) {
  out <- stdout()
  sink(stderr())
  input <- file("stdin")
  open(input)
  reply <- function(text) {
    cat(text, "\n", sep = "", file = out)
    flush(out)
  }
  fn <- tryCatch({
    for (p in packages) library(p, character.only = TRUE)
    ledgerflow_read_crate(model_file)
  }, error = function(e) {
    reply(.lf_object(ready = "false", error = .lf_string(conditionMessage(e))))
    quit(save = "no", status = 1)
  })
  reply(.lf_object(ready = "true", pid = Sys.getpid(), r_version = .lf_string(.lf_r_version())))
  repeat {
    line <- readLines(input, n = 1, warn = FALSE)
    if (length(line) == 0) break
    reply(tryCatch(withCallingHandlers(
      .lf_encode(fn(.lf_decode_frame(jsonlite::fromJSON(line, simplifyDataFrame = FALSE,
                                                        simplifyMatrix = FALSE)))),
      warning = function(w) {
        message("Warning: ", conditionMessage(w))
        invokeRestart("muffleWarning")
      }), error = function(e) {
        call <- conditionCall(e)
        .lf_object(ok = "false", error = .lf_string(conditionMessage(e)),
                   call = .lf_string(if (is.null(call)) "" else
                     paste(deparse(call, nlines = 1), collapse = "")))
      }))
  }
  invisible(NULL)
}

.lf_r_version <- function() paste(R.version$major, R.version$minor, sep = ".")

# Globals the function (and the global functions it calls) refer to, plus `extra`, in a
# new environment of the function, so that serialize() stores them with it.
.lf_capture <- function(fn, extra) {
  if (length(extra) > 0 && (is.null(names(extra)) || any(names(extra) == ""))) {
    stop("the objects to save with the function must be named (fit = fit)", call. = FALSE)
  }
  home <- environment(fn)
  if (is.null(home)) return(fn)
  env <- new.env(parent = if (identical(home, globalenv())) globalenv() else home)
  for (n in names(extra)) assign(n, extra[[n]], envir = env)
  if (identical(home, globalenv())) {
    todo <- list(fn)
    seen <- names(extra)
    while (length(todo) > 0) {
      f <- todo[[1]]
      todo <- todo[-1]
      used <- unique(c(all.names(body(f)), unlist(lapply(formals(f), all.names))))
      for (n in setdiff(used, seen)) {
        seen <- c(seen, n)
        if (!exists(n, envir = globalenv(), inherits = FALSE)) next
        value <- get(n, envir = globalenv())
        if (is.function(value) && identical(environment(value), globalenv())) {
          environment(value) <- env
          todo <- c(todo, list(value))
        }
        assign(n, value, envir = env)
      }
    }
  }
  environment(fn) <- env
  fn
}

# --- JSON: tables in, predictions out ---------------------------------------------------

.lf_string <- function(x) as.character(jsonlite::toJSON(as.character(x), auto_unbox = TRUE))

.lf_object <- function(...) {
  fields <- list(...)
  paste0("{", paste0('"', names(fields), '":', unlist(fields), collapse = ","), "}")
}

# A vector as a JSON array, doubles with 17 significant digits (they read back exactly);
# NA, NaN and infinities are null.
.lf_array <- function(x) {
  if (is.factor(x)) x <- as.character(x)
  if (inherits(x, "Date")) x <- format(x, "%Y-%m-%d")
  if (inherits(x, "POSIXt")) x <- format(as.POSIXct(x), "%Y-%m-%dT%H:%M:%OS6", tz = "UTC")
  items <- if (is.double(x)) {
    ifelse(is.finite(x), sprintf("%.17g", x), "null")
  } else if (is.integer(x)) {
    ifelse(is.na(x), "null", as.character(x))
  } else if (is.logical(x)) {
    ifelse(is.na(x), "null", ifelse(x, "true", "false"))
  } else {
    x <- as.character(x)
    ifelse(is.na(x), "null", vapply(x, function(s) .lf_string(s), "", USE.NAMES = FALSE))
  }
  paste0("[", paste(items, collapse = ","), "]")
}

.lf_type <- function(x) {
  if (inherits(x, c("Date", "POSIXt"))) "datetime"
  else if (is.factor(x) || is.character(x)) "character"
  else if (is.double(x)) "double"
  else if (is.integer(x)) "integer"
  else if (is.logical(x)) "logical"
  else "character"
}

.lf_encode <- function(pred) {
  if (is.data.frame(pred)) {
    cols <- vapply(pred, function(col) .lf_array(col), "", USE.NAMES = FALSE)
    types <- vapply(pred, .lf_type, "", USE.NAMES = FALSE)
    .lf_object(ok = "true", kind = '"frame"', columns = .lf_array(names(pred)),
               types = .lf_array(types), values = paste0("[", paste(cols, collapse = ","), "]"))
  } else if (is.matrix(pred) && is.atomic(pred)) {
    .lf_object(ok = "true", kind = '"matrix"', type = .lf_string(.lf_type(pred)),
               nrow = nrow(pred), ncol = ncol(pred), values = .lf_array(as.vector(pred)))
  } else if (is.atomic(pred) && is.null(dim(pred))) {
    .lf_object(ok = "true", kind = '"vector"', type = .lf_string(.lf_type(pred)),
               values = .lf_array(pred))
  } else {
    .lf_object(ok = "true", kind = '"json"',
               value = as.character(jsonlite::toJSON(pred, auto_unbox = TRUE, digits = NA,
                                                     na = "null", null = "null")))
  }
}

# The request {"columns": [...], "types": [...], "values": [[column], ...]} as a data.frame.
.lf_decode_frame <- function(req) {
  n <- length(req$columns)
  cols <- vector("list", n)
  for (i in seq_len(n)) {
    v <- req$values[[i]]
    if (is.list(v)) v <- unlist(lapply(v, function(e) if (is.null(e)) NA else e))
    if (is.null(v)) v <- logical(0)
    cols[[i]] <- switch(req$types[[i]],
      double = as.double(v),
      integer = if (all(is.na(v) | abs(v) <= .Machine$integer.max)) as.integer(v)
                else as.double(v),
      logical = as.logical(v),
      datetime = as.POSIXct(as.character(v), tz = "UTC", format = "%Y-%m-%dT%H:%M:%OS"),
      as.character(v))
  }
  rows <- if (n > 0) length(cols[[1]]) else 0L
  structure(cols, names = as.character(unlist(req$columns)), class = "data.frame",
            row.names = seq_len(rows))
}

# --- the model directory's other files -----------------------------------------------------

.lf_write_example <- function(example, path) {
  rows <- lapply(seq_len(nrow(example)), function(i) {
    cells <- vapply(example, function(col) .lf_array(col[i]), "", USE.NAMES = FALSE)
    paste0("[", paste(substring(cells, 2, nchar(cells) - 1), collapse = ", "), "]")
  })
  columns <- .lf_array(names(example))
  data <- paste0("[", paste(unlist(rows), collapse = ", "), "]")
  writeLines(paste0('{"columns": ', columns, ', "data": ', data, "}"),
             file.path(path, "input_example.json"))
  writeLines(paste0('{"dataframe_split": {"columns": ', columns, ', "data": ', data, "}}"),
             file.path(path, "serving_input_example.json"))
}

.lf_column_type <- function(x) {
  switch(.lf_type(x), double = "double", integer = "long", logical = "boolean",
         datetime = "datetime", "string")
}

.lf_input_schema <- function(example) {
  specs <- vapply(names(example), function(n) {
    col <- example[[n]]
    sprintf('{"type": "%s", "name": %s, "required": %s}', .lf_column_type(col),
            .lf_string(n), if (anyNA(col)) "false" else "true")
  }, "", USE.NAMES = FALSE)
  paste0("[", paste(specs, collapse = ", "), "]")
}

# The output schema Python infers from what pyfunc answers for these predictions: a
# vector is a 1-d numpy array (a tensor), a data.frame a table; anything else has none.
.lf_output_schema <- function(pred) {
  if (is.data.frame(pred)) return(.lf_input_schema(pred))
  if (!is.atomic(pred) || !is.null(dim(pred)) || is.factor(pred) || is.character(pred)) {
    return(NULL)
  }
  dtype <- switch(.lf_type(pred), double = "float64", integer = "int64", logical = "bool",
                  NULL)
  if (is.null(dtype) || anyNA(pred)) return(NULL)
  sprintf('[{"type": "tensor", "tensor-spec": {"dtype": "%s", "shape": [-1]}}]', dtype)
}

.lf_write_environment <- function(path, packages) {
  writeLines(c("ledgerflow", "pandas"), file.path(path, "requirements.txt"))
  writeLines(c("channels:", "- conda-forge", "dependencies:", "- python=3.11", "- pip",
               "- pip:", "  - ledgerflow", "  - pandas", "name: mlflow-env"),
             file.path(path, "conda.yaml"))
  writeLines(c("python: '3.11'", "build_dependencies:", "- pip", "dependencies:",
               "- -r requirements.txt"), file.path(path, "python_env.yaml"))
  pkgs <- unique(c("jsonlite", packages))
  versions <- vapply(pkgs, function(p) as.character(utils::packageVersion(p)), "")
  writeLines(c(paste0("R==", .lf_r_version()), paste0(pkgs, "==", versions)),
             file.path(path, "r_requirements.txt"))
}

# A nested named list as block YAML; strings are written JSON-quoted (valid YAML).
.lf_yaml <- function(x, indent = "") {
  lines <- character(0)
  for (key in names(x)) {
    value <- x[[key]]
    head <- paste0(indent, key, ":")
    if (is.list(value) && length(value) > 0) {
      lines <- c(lines, head, .lf_yaml(value, paste0(indent, "  ")))
    } else if (is.list(value) || is.null(value)) {
      lines <- c(lines, paste(head, if (is.list(value)) "{}" else "null"))
    } else if (is.logical(value)) {
      lines <- c(lines, paste(head, if (isTRUE(value)) "true" else "false"))
    } else if (is.numeric(value)) {
      lines <- c(lines, paste(head, format(value, scientific = FALSE)))
    } else {
      lines <- c(lines, paste(head, .lf_string(value)))
    }
  }
  lines
}
