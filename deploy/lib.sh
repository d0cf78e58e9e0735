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
