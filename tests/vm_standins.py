"""Stand-ins for the commands the SeisComP VM's cloud-init scripts call, for
tests/test_infra_vm_boot.py. Installed under a sandbox (a directory holding `.vm-sandbox`) as
one executable per command name (`fakebin/apt`, `opt/seiscomp/bin/seiscomp`, ...); the name it
was started under picks the behaviour. Every call is appended to `<sandbox>/calls.jsonl` with
the markers that existed at that moment. A call matching an entry of `<sandbox>/faults.json`
(`{"cmd": ..., "contains": [...]}`) fails as the real command would fail.

Each stand-in keeps the behaviour of the real command that the scripts depend on:

- sudo resets the environment (sudoers(5) env_reset: only TERM, PATH, HOME, MAIL, SHELL, LOGNAME,
  USER and SUDO_* survive, plus what --preserve-env names). PATH is kept as it is, where Ubuntu's
  secure_path would put the system directories (which hold the real apt) first.
- apt / apt-get ask "Do you want to continue? [Y/n]" before installing and abort on end-of-file
  unless APT::Get::Assume-Yes is true (apt, apt-private/private-output.cc, YnPrompt: the answer
  is read with cin.getline, `if (!cin) return false`); -y/--yes/--assume-yes, `-o
  APT::Get::Assume-Yes=true` and an APT_CONFIG file set it. DEBIAN_FRONTEND plays no part.
- systemctl runs a unit's ExecStart/ExecStop/ExecReload from the sandbox's unit files, honours
  ConditionPathExists= and RemainAfterExit=, and keeps active units under run/ (cleared at boot);
  a --no-block job is only recorded (the test runs the unit when systemd would).
- seiscomp keeps enabled/running modules; `install-deps` does what seiscomp-control.py's
  on_install_deps_linux does: `sudo sh <share/deps/<id>/<version>/install-<pkg>.sh>`.
- curl answers the instance metadata service, Key Vault, the SeisComP download and the bindings
  blob from files in the sandbox, and takes Put Blob (the VM's health file) into
  blobstore/<container>/<blob>, each upload also appended to puts.jsonl; any other host does
  not resolve (no network).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

SUDO_KEEPS = ("TERM", "PATH", "HOME", "MAIL", "SHELL", "LOGNAME", "USER")
TRUE_WORDS = ("true", "yes", "1", "on", "with")


def sandbox_of(path: Path) -> Path:
    for parent in path.parents:
        if (parent / ".vm-sandbox").exists():
            return parent
    raise SystemExit(f"stand-in {path} is not inside a sandbox")


ME = Path(os.path.abspath(sys.argv[0]))
NAME = ME.name
S = sandbox_of(ME)


def markers() -> list[str]:
    found = []
    for scope, directory in (("var", S / "var/lib/ccs/done"), ("run", S / "run/ccs/done")):
        if directory.is_dir():
            found += [f"{scope}:{p.name}" for p in directory.iterdir() if "." not in p.name]
    return sorted(found)


def record(argv: list[str], **extra: object) -> None:
    entry = {
        "cmd": NAME,
        "argv": argv,
        "env": {k: os.environ[k] for k in ("APT_CONFIG", "DEBIAN_FRONTEND") if k in os.environ},
        "markers": markers(),
        **extra,
    }
    with (S / "calls.jsonl").open("a") as out:
        out.write(json.dumps(entry) + "\n")


def injected(argv: list[str]) -> bool:
    path = S / "faults.json"
    if not path.exists():
        return False
    line = " ".join(argv)
    for fault in json.loads(path.read_text()):
        if fault["cmd"] == NAME and all(part in line for part in fault["contains"]):
            print(f"{NAME}: injected failure ({line})", file=sys.stderr)
            return True
    return False


def run_as_root(argv: list[str]) -> int:
    return subprocess.run(argv, check=False).returncode


# --- sudo, runuser ------------------------------------------------------------------------------


def sudo(args: list[str]) -> int:
    keep = set(SUDO_KEEPS)
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt.startswith("--preserve-env="):
            keep |= set(opt.split("=", 1)[1].split(","))
        elif opt == "--":
            break
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(SUDO_COMMAND=" ".join(args), SUDO_USER="root", SUDO_UID="0", SUDO_GID="0")
    return subprocess.run(args, env=env, check=False).returncode


def runuser(args: list[str]) -> int:
    # runuser -u <user> -- command...: the user does not matter in the sandbox.
    return run_as_root(args[args.index("--") + 1 :])


# --- apt ----------------------------------------------------------------------------------------


def apt_config_assume_yes(path: str) -> bool:
    text = Path(path).read_text() if path and Path(path).is_file() else ""
    match = re.search(r'APT::Get::Assume-Yes\s+"([^"]*)"\s*;', text, re.IGNORECASE)
    return match is not None and match.group(1).lower() in TRUE_WORDS


def apt(args: list[str]) -> int:
    assume_yes = apt_config_assume_yes(os.environ.get("APT_CONFIG", ""))
    words: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-o":
            key, _, value = args[i + 1].partition("=")
            if key.lower() == "apt::get::assume-yes":
                assume_yes = value.lower() in TRUE_WORDS
            i += 2
            continue
        if arg in ("--yes", "--assume-yes") or (
            arg.startswith("-") and not arg.startswith("--") and "y" in arg
        ):
            assume_yes = True
        elif not arg.startswith("-"):
            words.append(arg)
        i += 1
    if not words:
        return 100
    if words[0] == "update":
        return 0
    if words[0] != "install":
        print(f"{NAME}: unsupported here: {words[0]}", file=sys.stderr)
        return 100
    packages = words[1:]
    print(f"The following NEW packages will be installed:\n  {' '.join(packages)}")
    if not assume_yes:
        print("Do you want to continue? [Y/n] ", end="", flush=True)
        answer = sys.stdin.readline()
        if not answer or answer.strip().lower() not in ("", "y", "yes"):
            print("Abort.")
            return 1
    else:
        print("Do you want to continue? [Y/n] Y")
    installed = S / "var/lib/dpkg-standin/installed"
    installed.parent.mkdir(parents=True, exist_ok=True)
    with installed.open("a") as out:
        out.writelines(p + "\n" for p in packages)
    return 0


# --- systemctl ----------------------------------------------------------------------------------


def unit_file(unit: str) -> dict[str, list[str]] | None:
    path = S / "etc/systemd/system" / unit
    if not path.exists():
        return None
    keys: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def in_sandbox(path: str) -> Path:
    return S / path.lstrip("/")


def exec_line(command: str) -> int:
    argv = shlex.split(command)
    if in_sandbox(argv[0]).exists():
        argv[0] = str(in_sandbox(argv[0]))
    else:
        argv[0] = Path(argv[0]).name  # a system tool: the stand-in on PATH
    return subprocess.run(argv, stdin=subprocess.DEVNULL, check=False).returncode


def active_file(unit: str) -> Path:
    return S / "run/systemd-standin/active" / unit


def unit_start(unit: str) -> int:
    spec = unit_file(unit)
    if spec is None:  # a unit of the distribution (nftables, wg-quick@, timers): it starts
        active_file(unit).parent.mkdir(parents=True, exist_ok=True)
        active_file(unit).touch()
        return 0
    for path in spec.get("ConditionPathExists", []):
        if not in_sandbox(path).exists():
            return 0  # a failed condition skips the unit; it is not an error
    for command in spec.get("ExecStart", []):
        if exec_line(command) != 0:
            print(f"systemctl: {unit} failed", file=sys.stderr)
            return 1
    if spec.get("RemainAfterExit", ["no"])[-1] in TRUE_WORDS:
        active_file(unit).parent.mkdir(parents=True, exist_ok=True)
        active_file(unit).touch()
    return 0


def unit_stop(unit: str) -> int:
    spec = unit_file(unit) or {}
    if active_file(unit).exists():
        for command in spec.get("ExecStop", []):
            exec_line(command)
        active_file(unit).unlink()
    return 0


def systemctl(args: list[str]) -> int:
    verb, *rest = args
    if "--no-block" in rest:
        return 0  # only queued: the test runs the unit itself when systemd would
    now = "--now" in rest
    units = [u for u in rest if not u.startswith("-")]
    status = 0
    for unit in units:
        active = active_file(unit).exists()
        if verb == "enable":
            enabled = S / "etc/systemd-standin/enabled" / unit
            enabled.parent.mkdir(parents=True, exist_ok=True)
            enabled.touch()
            if now:
                status |= unit_start(unit)
        elif verb == "start":
            if not active:
                status |= unit_start(unit)
        elif verb == "restart" or (verb == "try-restart" and active):
            unit_stop(unit)
            status |= unit_start(unit)
        elif verb == "try-reload-or-restart" and active:
            for command in (unit_file(unit) or {}).get("ExecReload", []):
                status |= exec_line(command)
        elif verb == "stop":
            unit_stop(unit)
        elif verb == "is-active":
            status |= 0 if active else 3
    return status


# --- seiscomp -----------------------------------------------------------------------------------


def seiscomp(args: list[str]) -> int:
    root = ME.parent.parent
    state = root / "var/standin"
    state.mkdir(parents=True, exist_ok=True)
    command, *mods = args

    def enabled() -> list[str]:
        return sorted(p.name.removeprefix("enabled-") for p in state.glob("enabled-*"))

    if command == "enable":
        for mod in mods:
            (state / f"enabled-{mod}").touch()
    elif command in ("start", "check"):
        for mod in mods or enabled():
            if (state / f"enabled-{mod}").exists():
                (state / f"running-{mod}").touch()
    elif command == "stop":
        for mod in mods or enabled():
            (state / f"running-{mod}").unlink(missing_ok=True)
    elif command == "status":
        for mod in mods or enabled():
            running = (state / f"running-{mod}").exists()
            print(f"{mod:<20} is {'running' if running else 'not running'}")
    elif command == "update-config":
        pass
    elif command == "install-deps":
        return install_deps(root, mods)
    else:
        print(f"seiscomp: unknown command {command}", file=sys.stderr)
        return 1
    return 0


def install_deps(root: Path, packages: list[str]) -> int:
    """seiscomp-control.py on_install_deps_linux: detectOS() from /etc/os-release, the version
    shortened at its dots until share/deps/<id>/<version> exists, then `sudo sh` per package,
    with the caller's environment (system() passes env=os.environ)."""
    info = dict(
        line.split("=", 1)
        for line in (S / "etc/os-release").read_text().splitlines()
        if "=" in line
    )
    osid, version = info["ID"].strip('"'), info["VERSION_ID"].strip('"')
    script_dir = root
    for n in range(version.count(".") + 1):
        script_dir = root / "share/deps" / osid.lower() / version.rsplit(".", n)[0].lower()
        if script_dir.exists():
            break
    for pkg in packages:
        script = script_dir / f"install-{pkg}.sh"
        if subprocess.run(["sudo", "sh", str(script)], check=False).returncode != 0:
            print("error: installation failed", file=sys.stderr)
            return 1
    return 0


# --- curl ---------------------------------------------------------------------------------------


def curl(args: list[str]) -> int:
    out_file, write_out, headers, url, fail = None, None, [], "", False
    method, data = "GET", None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-o", "-w", "-H", "--retry", "--noproxy", "--max-time", "-X", "--data-binary"):
            value = args[i + 1]
            if arg == "-o":
                out_file = value
            elif arg == "-w":
                write_out = value
            elif arg == "-H":
                headers.append(value)
            elif arg == "-X":
                method = value
            elif arg == "--data-binary":
                # curl reads "@file" from the file (curl(1), --data-binary).
                data = Path(value[1:]).read_bytes() if value.startswith("@") else value.encode()
            i += 2
            continue
        if arg.startswith("-") and not arg.startswith("--"):
            fail = fail or "f" in arg
        elif not arg.startswith("-"):
            url = arg
        i += 1
    code, body = put(url, headers, data) if method == "PUT" else respond(url, headers)
    if code == 0:
        print(f"curl: (6) Could not resolve host: {url}", file=sys.stderr)
        return 6
    if fail and code >= 400:
        print(f"curl: (22) The requested URL returned error: {code}", file=sys.stderr)
        return 22
    if out_file:
        Path(out_file).write_bytes(body)
    else:
        sys.stdout.buffer.write(body)
    if write_out:
        print(write_out.replace("%{http_code}", str(code)), end="")
    return 0


def put(url: str, headers: list[str], data: bytes | None) -> tuple[int, bytes]:
    """Put Blob as the storage service checks it (learn.microsoft.com/rest/api/storageservices/
    put-blob): the identity's bearer token, x-ms-version and x-ms-blob-type; 201 Created."""
    if ".blob.core.windows.net/" not in url:
        return 0, b""
    if "Authorization: Bearer token-for-https://storage.azure.com/" not in headers:
        return 401, b""
    if "x-ms-blob-type: BlockBlob" not in headers or not any(
        h.startswith("x-ms-version: ") for h in headers
    ):
        return 400, b""
    container, blob = url.split(".blob.core.windows.net/", 1)[1].split("/", 1)
    target = S / "blobstore" / container / blob
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data or b"")
    with (S / "puts.jsonl").open("a") as out:
        entry = {"url": url, "headers": headers, "body": (data or b"").decode()}
        out.write(json.dumps(entry) + "\n")
    return 201, b""


def respond(url: str, headers: list[str]) -> tuple[int, bytes]:
    imds = S / "imds"
    if url.startswith("http://169.254.169.254/metadata/"):
        if "Metadata:true" not in headers:
            return 400, b"{}"
        if "/instance/compute/userData" in url:
            return 200, (imds / "userData").read_bytes()
        if "/identity/oauth2/token" in url:
            resource = url.split("resource=", 1)[1]
            return 200, json.dumps({"access_token": f"token-for-{resource}"}).encode()
    if ".vault.azure.net/secrets/" in url:
        if "Authorization: Bearer token-for-https://vault.azure.net" not in headers:
            return 401, b"{}"
        return 200, json.dumps({"value": (imds / "share_key").read_text()}).encode()
    if url.startswith("https://www.seiscomp.de/downloader/"):
        archive = S / "www" / url.rsplit("/", 1)[1]
        return (200, archive.read_bytes()) if archive.exists() else (404, b"")
    if ".blob.core.windows.net/" in url:
        if "Authorization: Bearer token-for-https://storage.azure.com/" not in headers:
            return 403, b""
        blob = S / "www" / url.rsplit("/", 1)[1]
        return (200, blob.read_bytes()) if blob.exists() else (404, b"")
    return 0, b""


# --- the small ones -----------------------------------------------------------------------------


def wg(args: list[str]) -> int:
    if args[0] == "genkey":
        print(base64.b64encode(os.urandom(32)).decode())
    elif args[0] == "pubkey":
        private = sys.stdin.buffer.read().strip()
        print(base64.b64encode(hashlib.sha256(private).digest()).decode())
    return 0


def mounts_file() -> Path:
    return S / "run/mounts-standin"


def mounted() -> list[str]:
    return mounts_file().read_text().split("\n") if mounts_file().exists() else []


def mount(args: list[str]) -> int:
    positional = [
        a for i, a in enumerate(args) if not a.startswith("-") and args[i - 1] not in ("-t", "-o")
    ]
    target = positional[-1]
    if not Path(target).is_dir():
        print(f"mount: {target}: mount point does not exist", file=sys.stderr)
        return 32
    mounts_file().parent.mkdir(parents=True, exist_ok=True)
    mounts_file().write_text("\n".join([*mounted(), target]))
    return 0


def umount(args: list[str]) -> int:
    mounts_file().write_text("\n".join(m for m in mounted() if m != args[-1]))
    return 0


def mountpoint(args: list[str]) -> int:
    return 0 if args[-1] in mounted() else 32


def nft(args: list[str]) -> int:
    return 0 if "table inet ccs" in Path(args[args.index("-f") + 1]).read_text() else 1


COMMANDS = {
    "sudo": sudo,
    "runuser": runuser,
    "apt": apt,
    "apt-get": apt,
    "systemctl": systemctl,
    "seiscomp": seiscomp,
    "curl": curl,
    "wg": wg,
    "mount": mount,
    "umount": umount,
    "mountpoint": mountpoint,
    "nft": nft,
    "chown": lambda args: 0,  # no root here; ownership is not what the test checks
}


def main() -> int:
    args = sys.argv[1:]
    record(args)
    if injected(args):
        return 22 if NAME == "curl" else 1
    return COMMANDS[NAME](args)


if __name__ == "__main__":
    sys.exit(main())
