"""A throwaway single-node Slurm cluster on localhost (munged + slurmctld + slurmd), for tests.

Everything it writes lives in a fresh ``/tmp/cbpu-slurm-*`` directory (munge key and socket, state,
spool, logs, config) and the daemons listen on free, non-default ports. One thing has to live at a
fixed place: the executor plugin's in-job step strips every ``SLURM_*`` variable (``SLURM_CONF``
included) before it calls ``srun``, so ``srun`` inside a job finds its configuration only at the
default path. For the life of the cluster ``/etc/slurm/slurm.conf`` is therefore a symlink to the
temporary config (removed afterwards); a real configuration found there makes the cluster
unavailable rather than overwritten, and a lock file keeps two test sessions from sharing it.

No accounting database: job state comes from ``squeue``, which keeps finished jobs for ``MinJobAge``.
Optional fake GPUs (gres ``gpu`` backed by ``/dev/null``-like files) let ``--gpus=N`` requests be
scheduled on a machine without GPUs; the jobs themselves then run on the CPU.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
LOCK_FILE = Path("/tmp/cbpu-slurm-test.lock")
PREFIX = "cbpu-slurm-"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "srun", "scontrol", "sinfo", "scancel", "munge")
FAKE_GPU_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random")
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])


class SlurmUnavailable(RuntimeError):
    """Slurm cannot run here at all (not installed, not root, or a real Slurm is configured)."""


def _which(name: str) -> str | None:
    return shutil.which(name, path=SBIN_PATH)


def check_available() -> None:
    """Raise SlurmUnavailable with the reason when this machine cannot host the test cluster."""
    missing = [name for name in DAEMONS + CLIENTS if _which(name) is None]
    if missing:
        raise SlurmUnavailable(f"{', '.join(missing)} not on PATH (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        raise SlurmUnavailable("slurmd must run as root to start jobs, and this is not root")
    if (SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink()) and not _is_ours(SYSTEM_CONF):
        raise SlurmUnavailable(f"{SYSTEM_CONF} belongs to a real Slurm installation; not touching it")


def _is_ours(path: Path) -> bool:
    return path.is_symlink() and Path(os.readlink(path)).parent.name.startswith(PREFIX)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 2048


@dataclass
class LocalSlurm:
    root: Path
    node: str
    partitions: tuple[str, ...]
    cpus: int
    memory_mb: int
    gpus: int
    env: dict[str, str] = field(default_factory=dict)
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        return self.root / "munge" / "munge.socket"

    def command(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        """Run a Slurm client command against this cluster; return its stdout."""
        proc = subprocess.run([_which(args[0]) or args[0], *args[1:]], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}\n{self.logs()}")
        return proc.stdout

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller still remembers (finished ones for MinJobAge): id, state, partition, comment."""
        out = self.command("squeue", "--states=all", "--noheader", "--format=%i|%T|%P|%k")
        rows = [line.split("|", 3) for line in out.splitlines() if line.strip()]
        return [dict(zip(("id", "state", "partition", "comment"), row)) for row in rows]

    def job_details(self, job_id: str) -> str:
        return self.command("scontrol", "--oneliner", "show", "job", job_id)

    def logs(self, lines: int = 40) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name} (last {lines} lines) ---\n" + "\n".join(text))
        return "\n".join(parts)

    # -- set-up ---------------------------------------------------------------------------------

    def write_config(self) -> None:
        ctld_port, slurmd_port = _free_port(), _free_port()
        while slurmd_port == ctld_port:
            slurmd_port = _free_port()
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        lines = [
            "# Throwaway test cluster written by tests/slurm_cluster.py; safe to delete.",
            "ClusterName=cbputest",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
            f"PlugStackConfig={self.root / 'plugstack.conf'}",
            "SlurmdParameters=config_overrides",     # trust the CPUs/memory declared below over probing
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            f"DefMemPerCPU={max(1, self.memory_mb // self.cpus)}",   # a job without --mem must not take the node
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "MinJobAge=3600",                        # squeue keeps finished jobs this long (no sacct here)
            "ReturnToService=2",
            "KillWait=5",
            "InactiveLimit=0",
            "MailProg=/bin/true",
            *(["GresTypes=gpu"] if self.gpus else []),
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb}{gres} State=UNKNOWN",
            *(f"PartitionName={name} Nodes={self.node} Default={'YES' if i == 0 else 'NO'} MaxTime=INFINITE State=UP"
              for i, name in enumerate(self.partitions)),
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        (self.root / "plugstack.conf").write_text("")
        if self.gpus:
            (self.root / "gres.conf").write_text("".join(
                f"NodeName={self.node} Name=gpu File={path}\n" for path in FAKE_GPU_FILES[:self.gpus]))

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "wb")
        self.daemons[name] = subprocess.Popen([_which(name), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def _wait(self, what: str, ready, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.daemons.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}) while waiting for {what}\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.logs()}")

    def start(self) -> None:
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(mode=0o755)
        self.root.chmod(0o755)                          # munged insists its socket path is traversable
        key = self.root / "munge" / "munge.key"
        if _which("mungekey"):
            subprocess.run([_which("mungekey"), "--create", "--bits=1024", f"--keyfile={key}"], check=True,
                           capture_output=True)
        else:                                            # munge < 0.5.14 has no mungekey
            key.write_bytes(os.urandom(128))
        key.chmod(0o600)
        self.write_config()
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        if SYSTEM_CONF.is_symlink():
            SYSTEM_CONF.unlink()                       # a stale link of an earlier, killed session
        SYSTEM_CONF.symlink_to(self.conf)

        munge_dir = self.root / "munge"
        self._spawn("munged", "--foreground", f"--socket={self.munge_socket}", f"--key-file={key}",
                    f"--pid-file={munge_dir / 'munged.pid'}", f"--seed-file={munge_dir / 'munged.seed'}",
                    f"--log-file={self.root / 'log' / 'munged.log'}", "--num-threads=4")
        self._wait("munged", lambda: subprocess.run([_which("munge"), "-n", "-S", str(self.munge_socket)],
                                                    capture_output=True).returncode == 0)
        self._spawn("slurmctld", "-D", "-f", str(self.conf))
        self._wait("slurmctld", lambda: subprocess.run([_which("scontrol"), "ping"], env=self.env,
                                                       capture_output=True, text=True).stdout.count("UP") > 0)
        self._spawn("slurmd", "-D", "-f", str(self.conf), "-N", self.node)
        self._wait(f"node {self.node} to become idle", self._node_idle)

    def _node_idle(self) -> bool:
        proc = subprocess.run([_which("sinfo"), "--noheader", "--Node", "--format=%T"], env=self.env,
                              capture_output=True, text=True)
        return proc.returncode == 0 and proc.stdout.split()[:1] == ["idle"]

    # -- tear-down ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Cancel every job, stop the daemons (SIGTERM, then SIGKILL) and remove the system symlink."""
        if self.daemons.get("slurmctld") and self.daemons["slurmctld"].poll() is None:
            with contextlib.suppress(Exception):
                ids = [job["id"] for job in self.jobs() if job["state"] in ("PENDING", "RUNNING", "CONFIGURING",
                                                                            "COMPLETING", "SUSPENDED")]
                if ids:
                    self.command("scancel", *ids, check=False)
                    deadline = time.monotonic() + 20
                    while time.monotonic() < deadline and any(
                            job["state"] in ("RUNNING", "COMPLETING") for job in self.jobs()):
                        time.sleep(0.5)
        for name in reversed(DAEMONS):
            proc = self.daemons.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        self._kill_leftovers()
        if _is_ours(SYSTEM_CONF) and Path(os.readlink(SYSTEM_CONF)) == self.conf:
            SYSTEM_CONF.unlink()

    def _kill_leftovers(self) -> None:
        """Kill processes that still carry this cluster's SLURM_CONF (job steps, slurmscriptd), by pid."""
        marker = f"SLURM_CONF={self.conf}".encode()
        own = {os.getpid(), os.getppid()}
        for proc_dir in Path("/proc").iterdir():
            if not proc_dir.name.isdigit() or int(proc_dir.name) in own:
                continue
            try:
                if marker in (proc_dir / "environ").read_bytes().split(b"\0"):
                    os.kill(int(proc_dir.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue


@contextlib.contextmanager
def local_slurm(partitions: tuple[str, ...] = ("debug",), gpus: int = 0,
                memory_mb: int | None = None) -> Iterator[LocalSlurm]:
    """Start the cluster, yield it, and always stop it and delete its files afterwards."""
    check_available()
    with open(LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)            # one test cluster per machine at a time
        check_available()
        root = Path(tempfile.mkdtemp(prefix=PREFIX, dir="/tmp"))   # short: unix socket paths are limited
        cluster = LocalSlurm(root=root, node=socket.gethostname().split(".")[0], partitions=tuple(partitions),
                             cpus=len(os.sched_getaffinity(0)),
                             memory_mb=memory_mb or max(512, min(4096, _memory_mb() // 2)), gpus=gpus)
        cluster.env = dict(os.environ, SLURM_CONF=str(cluster.conf), PATH=SBIN_PATH)
        try:
            cluster.start()
            yield cluster
        finally:
            try:
                cluster.stop()
            finally:
                shutil.rmtree(root, ignore_errors=True)
