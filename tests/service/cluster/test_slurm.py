"""`afpe slurm` on a real Slurm: munged, slurmctld and slurmd (Debian's `munge` and `slurm-wlm`) started here with a
throwaway configuration (own cluster name, ports, state, spool, logs and munge socket under /tmp; one node, 2 CPUs,
select/cons_tres, proctrack/linuxproc, no cgroups) and stopped by PID afterwards. The README's two Slurm commands
make and submit the quickstart's script (tiny overrides, the test's PostgreSQL database): a first job is cancelled
while its trial runs and leaves no process behind; the same script submitted again resumes the study to COMPLETE.

Skipped where the Slurm or munge programs are missing, except in CI (`CI` set; `.ci/run` installs them), where
that fails the test.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from afpe.service.cluster.slurm import job_ports
from afpe.service.cluster.topology import free_port

ROOT = Path(__file__).resolve().parents[3]
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")
TINY = [  # the quickstart in seconds: one tiny epoch, 64 training cells, one trial at a time, no repeats
    *("--set", "n_trials=2", "--set", "trainer.epochs=1", "--set", "repeats=null"),
    *("--set", "task_options.n_train=64", "--set", "task_options.n_val=16", "--set", "resources.max_concurrent=1"),
    *("--set", "trainer.model.dim=16", "--set", "trainer.model.depth=1", "--set", "trainer.model.heads=2"),
]


def readme_slurm_commands() -> list[str]:
    """The bash block of the README's "Slurm" section: the commands a user types."""
    section = (ROOT / "README.md").read_text().split("\n## Slurm\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README.md's Slurm section must show its commands in a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


@dataclass
class LocalSlurm:
    """A one-node Slurm of this test's own; `env` points its client commands (and the jobs) at it."""

    root: Path
    cluster: str
    env: dict[str, str]
    daemons: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *command: str, cwd: Path | None = None) -> str:
        result = subprocess.run(command, env=self.env, cwd=cwd, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{shlex.join(command)}: {result.stderr}"
        return result.stdout

    def job_state(self, job: int) -> dict[str, str]:
        text = self.run("scontrol", "show", "job", "--oneliner", str(job))
        return dict(item.split("=", 1) for item in text.split() if "=" in item)

    def wait_for_job_end(self, job: int, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while (state := self.job_state(job))["JobState"] in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING"):
            assert time.monotonic() < deadline, f"job {job} still {state['JobState']} after {timeout:.0f} s"
            time.sleep(0.5)
        return state

    def processes_of(self, job: int) -> dict[int, str]:
        """pid -> command line of every process of `job` (on this cluster), found by its Slurm environment."""
        marks = {f"SLURM_JOB_ID={job}".encode(), f"SLURM_CLUSTER_NAME={self.cluster}".encode()}
        found = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    environ = set((entry / "environ").read_bytes().split(b"\0"))
                    if marks <= environ:
                        found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue  # ended meanwhile, or not ours to read
        return found


def start(slurm: LocalSlurm, name: str, command: list[str]) -> None:
    log = open(slurm.root / f"{name}.out", "wb")  # noqa: SIM115 - the daemon writes it until it is stopped
    slurm.daemons.append(
        subprocess.Popen(command, env=slurm.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    )


def wait_until(condition, timeout: float, what: str, detail=lambda: "") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout:.0f} s\n{detail()}"
        time.sleep(0.3)


@pytest.fixture
def slurm() -> Iterator[LocalSlurm]:
    missing = [program for program in PROGRAMS if shutil.which(program) is None]
    if missing:
        message = f"no Slurm here (missing: {', '.join(missing)}; Debian: apt-get install slurm-wlm munge)"
        if os.environ.get("CI"):
            pytest.fail(f"CI: {message}; .ci/run installs them")
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="afpe-slurm-", dir="/tmp"))  # short: munge's and slurmd's sockets
    cluster = f"afpe{uuid.uuid4().hex[:8]}"
    slurm = LocalSlurm(root, cluster, {**os.environ, "SLURM_CONF": str(root / "slurm.conf")})
    try:
        munge = root / "munge"
        munge.mkdir(mode=0o700)
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        socket_path = munge / "socket"
        files = {"socket": socket_path, "key-file": key, "pid-file": munge / "pid", "log-file": munge / "log"}
        start(slurm, "munged", ["munged", "-F", "--force", *(f"--{k}={v}" for k, v in files.items())])
        wait_until(socket_path.exists, 30, "munged's socket")
        host = socket.gethostname().split(".")[0]
        for folder in ("state", "spool"):
            (root / folder).mkdir()
        settings = {
            "ClusterName": cluster,
            "SlurmctldHost": f"{host}(127.0.0.1)",
            "SlurmctldPort": free_port(),
            "SlurmdPort": free_port(),
            "SlurmUser": "root",
            "SlurmdUser": "root",
            "AuthType": "auth/munge",
            "CredType": "cred/munge",
            "AuthInfo": f"socket={socket_path}",
            "StateSaveLocation": root / "state",
            "SlurmdSpoolDir": root / "spool",
            "SlurmctldPidFile": root / "slurmctld.pid",
            "SlurmdPidFile": root / "slurmd.pid",
            "SlurmctldLogFile": root / "slurmctld.log",
            "SlurmdLogFile": root / "slurmd.log",
            "ProctrackType": "proctrack/linuxproc",
            "TaskPlugin": "task/none",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_CPU",
            "SchedulerType": "sched/builtin",
            "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none",
            "MpiDefault": "none",
            "MailProg": "/bin/true",
            "ReturnToService": 2,
            "SlurmdParameters": "config_overrides",
            "KillWait": 30,
            "FirstJobId": random.randint(1000, 999_999),  # two suites at once: other job ids, other Ray ports
            "NodeName": f"{host} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN",
            "PartitionName": "afpe Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        }
        (root / "slurm.conf").write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        start(slurm, "slurmctld", ["slurmctld", "-D", "-i"])
        start(slurm, "slurmd", ["slurmd", "-D"])
        idle = lambda: "idle" in slurm.run("sinfo", "--noheader", "--Node", "--format=%T")  # noqa: E731
        wait_until(idle, 60, "the Slurm node idle")
        yield slurm
    finally:
        queue = ["squeue", "--noheader", "--format=%i"]  # this cluster's jobs only: SLURM_CONF names it
        deadline = time.monotonic() + 60  # a job's script stops its Ray and removes its files as it ends
        while (jobs := subprocess.run(queue, env=slurm.env, capture_output=True, text=True).stdout.split()) and (
            time.monotonic() < deadline
        ):
            subprocess.run(["scancel", *jobs], env=slurm.env, capture_output=True)
            time.sleep(1)
        for daemon in reversed(slurm.daemons):  # slurmd, slurmctld, munged: by PID
            daemon.terminate()
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        shutil.rmtree(root, ignore_errors=True)


def submitted(output: str) -> int:
    match = re.fullmatch(r"Submitted batch job (\d+)\n", output)
    assert match, output
    return int(match.group(1))


def test_the_readme_commands_run_a_study_on_slurm_scancel_stops_all_and_resubmitting_resumes_it(
    slurm: LocalSlurm, postgres_url: str, afpe_executable: str, user_env: dict[str, str], tmp_path: Path
) -> None:
    import optuna
    from optuna.trial import TrialState

    began = time.monotonic()
    make, submit = readme_slurm_commands()
    words = shlex.split(make)  # afpe slurm quickstart --nodes 2 --storage URL > quickstart.sbatch
    assert (
        words[:3] == ["afpe", "slurm", "quickstart"]
        and words[-2] == ">"
        and shlex.split(submit)
        == [
            "sbatch",
            words[-1],
        ]
    )
    here = {"--nodes": "1", "--storage": postgres_url}  # this machine's one node and the test's database
    assert sorted(words[3:-2:2]) == sorted(here), "the test replaces exactly the values of the README's flags"
    arguments = [word for flag in words[3:-2:2] for word in (flag, here[flag])] + ["--cpus-per-node", "2", *TINY]
    work = tmp_path / "submit"
    work.mkdir()
    env = {**user_env, "SLURM_CONF": slurm.env["SLURM_CONF"]}
    with open(work / words[-1], "w") as script:
        subprocess.run([afpe_executable, *words[1:3], *arguments], stdout=script, env=env, check=True, timeout=120)

    def sbatch() -> int:
        return submitted(subprocess.run(shlex.split(submit), env=env, cwd=work, capture_output=True, text=True).stdout)

    def trials() -> list:
        try:
            return optuna.load_study(study_name="quickstart", storage=postgres_url).trials
        except KeyError:
            return []

    def logs(job: int) -> str:
        files = [work / f"afpe-quickstart-{job}.out", *Path(user_env["HOME"], ".afpe", "slurm", str(job)).glob("*.log")]
        return "\n".join(f"--- {path}\n{path.read_text()[-3000:]}" for path in files if path.exists())

    first, submitted_at = sbatch(), time.monotonic()
    running = lambda: any(trial.state == TrialState.RUNNING for trial in trials())  # noqa: E731
    wait_until(running, 300, "job 1's first trial", lambda: logs(first))
    job_dir = Path(user_env["HOME"], ".afpe", "slurm", str(first))
    assert stat.S_IMODE(job_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((job_dir / "ray_token").stat().st_mode) == 0o600
    with socket.create_connection(("127.0.0.1", job_ports(first)["gcs_port"]), timeout=5):
        pass  # the head's GCS listens on the job's own port
    ray = [command for command in slurm.processes_of(first).values() if "raylet" in command or "gcs_server" in command]
    assert ray, slurm.processes_of(first)
    cancelled = time.monotonic()
    first_trial_s = cancelled - submitted_at
    slurm.run("scancel", str(first))
    gone = lambda: not slurm.processes_of(first)  # noqa: E731
    wait_until(gone, 25, "the cancelled job's processes ended", lambda: f"{slurm.processes_of(first)}\n{logs(first)}")
    stopped_s = time.monotonic() - cancelled
    assert slurm.wait_for_job_end(first, 30)["JobState"] == "CANCELLED"
    assert not (job_dir / "ray_token").exists() and not Path(f"/tmp/afpe-ray-{first}").exists()
    left = trials()

    time.sleep(max(0.0, cancelled + 11 - time.monotonic()))  # the killed driver's lease expires 10 s after it
    second, submitted_at = sbatch(), time.monotonic()
    state = slurm.wait_for_job_end(second, 360)
    second_s = time.monotonic() - submitted_at
    output = (work / f"afpe-quickstart-{second}.out").read_text()
    assert state["JobState"] == "COMPLETED" and state["ExitCode"] == "0:0", logs(second)
    assert f"head {socket.gethostname().split('.')[0]}:{job_ports(second)['gcs_port']}" in output, output
    assert "study quickstart: 2/2 finished" in output, output
    assert not slurm.processes_of(second) and not Path(f"/tmp/afpe-ray-{second}").exists()
    resumed = {trial.number: trial.state for trial in trials()}
    for trial in left:  # job 1's trials are kept: those it left RUNNING failed as stale by the resume
        assert resumed[trial.number] == (TrialState.FAIL if trial.state == TrialState.RUNNING else trial.state)
    assert len(resumed) > len(left) and list(resumed.values()).count(TrialState.COMPLETE) == 2, resumed

    # `--submit` hands the same script to sbatch itself (cancelled at once: the runs above ran that script)
    submit_itself = [afpe_executable, *words[1:3], *arguments, "--submit"]
    said = subprocess.run(submit_itself, env=env, cwd=work, capture_output=True, text=True, timeout=120)
    third = int(re.fullmatch(r"submitted job (\d+) \(study quickstart\).*\n", said.stdout, re.S).group(1))
    assert slurm.job_state(third)["JobName"] == "afpe-quickstart"
    slurm.run("scontrol", "write", "batch_script", str(third), str(work / "third.sbatch"))
    assert (work / "third.sbatch").read_text() == (work / words[-1]).read_text()
    slurm.run("scancel", str(third))
    slurm.wait_for_job_end(third, 60)
    wait_until(lambda: not slurm.processes_of(third), 25, "the third job's processes ended")
    print(
        f"slurm: job 1 submitted to its first trial running {first_trial_s:.0f} s, scancel to no process left "
        f"{stopped_s:.1f} s; job 2 (resume) submitted to COMPLETED {second_s:.0f} s; "
        f"test {time.monotonic() - began:.0f} s (load average {os.getloadavg()[0]:.1f})"
    )
