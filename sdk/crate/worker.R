# The long-lived R process behind a loaded `ledgerflow.crate` model:
#   Rscript --vanilla worker.R <crate.bin> [package ...]
# It sources ledgerflow.R from its own folder and answers JSON lines (ledgerflow_worker).
args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grepl("^--file=", args)][1])
source(file.path(dirname(normalizePath(script)), "ledgerflow.R"))
rest <- commandArgs(trailingOnly = TRUE)
ledgerflow_worker(rest[1], rest[-1])
