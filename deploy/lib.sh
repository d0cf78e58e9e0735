# Shared helpers for deploy/*.sh. Source it; do not run it.

# fleetplan_root: the repository root.
fleetplan_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# fleetplan_install_packages [EXTRA_LIST...]: installs what deploy/packages.txt (and the extra
# lists, e.g. deploy/packages-test.txt) name and this machine lacks. Runs `apt-get update` first
# whenever something must be installed. As root it calls apt-get directly; otherwise through sudo,
# and says so.
fleetplan_install_packages() {
  local root list missing=()
  root=$(fleetplan_root)
  list=$(cat "$root/deploy/packages.txt" "$@" | grep -v '^\s*#' | grep -v '^\s*$')
  for pkg in $list; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "fleetplan: all $(echo "$list" | wc -w) Debian packages already installed"
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "fleetplan: missing packages (${missing[*]}) and not root, and sudo is not available." >&2
      echo "fleetplan: run as root, or install them: apt-get install ${missing[*]}" >&2
      return 1
    fi
    sudo="sudo"
    echo "fleetplan: not root; using sudo to install: ${missing[*]}"
  else
    echo "fleetplan: installing: ${missing[*]}"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# fleetplan_jobs: parallel build jobs (all cores).
fleetplan_jobs() { nproc 2>/dev/null || echo 2; }

# fleetplan_install_browser_test: Node.js and npm (Debian's, unless the machine has its own) and
# the browser test's npm modules (tests/browser: puppeteer-core, no browser download; Chromium is
# Debian's, from deploy/packages-test.txt). `npm ci` runs again only when package-lock.json changed.
fleetplan_install_browser_test() {
  local dir sudo=""
  dir="$(fleetplan_root)/tests/browser"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "fleetplan: installing Debian's nodejs and npm (the browser test's driver)"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends nodejs npm
  fi
  if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.fleetplan-installed-lock" 2>/dev/null; then
    echo "fleetplan: npm ci in tests/browser"
    (cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) &&
      cp "$dir/package-lock.json" "$dir/node_modules/.fleetplan-installed-lock"
  fi
}
