#!/usr/bin/env bash
# The R flavor's tests (tests/integration/test_models_crate.py) run R models in Rscript
# workers: R and jsonlite come from Debian (r-base-core, r-cran-jsonlite). Installs them
# when run as root (CI), otherwise says exactly what is missing.
set -euo pipefail
has_r() {
  command -v Rscript >/dev/null 2>&1 &&
    Rscript --vanilla -e 'quit(status = !requireNamespace("jsonlite", quietly = TRUE))' >/dev/null 2>&1
}
if has_r; then
  exit 0
fi
packages=(r-base-core r-cran-jsonlite)
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing R (Debian's ${packages[*]}) for the R model tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${packages[@]}" >/dev/null ||
    { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null &&
      apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${packages[@]}" >/dev/null; }
  has_r || { echo "error: installed ${packages[*]} but Rscript with jsonlite still fails" >&2; exit 2; }
  exit 0
fi
echo "error: the R model tests need Rscript and the jsonlite package: run" \
  "'sudo apt-get install -y --no-install-recommends ${packages[*]}'" >&2
exit 2
