"""`afpe slurm` on a real Slurm: munged, slurmctld and two slurmds (Debian's `munge` and `slurm-wlm`) started here
with a throwaway configuration (own cluster name, ports, state, spools, logs and munge socket under /tmp; 2 CPUs a
node, select/cons_tres, proctrack/linuxproc, no cgroups) and stopped by PID afterwards. The second node is "another
host": its slurmd runs in a network namespace (conftest's `other_host`: own IP over a veth pair) with a host name of
its own; both see the same filesystem, as a cluster's shared one. The README's two Slurm commands make and submit the
quickstart's script for two nodes (tiny overrides, the test's PostgreSQL database, a CPU per node and per trial, two
trials at a time): a first job is cancelled while its trial runs and leaves no process behind on either node; the
same script submitted again resumes the study to COMPLETE, its two trials run at once, one on each node's Ray.

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

from afpe.search import load_spec
from afpe.search.priors import PRIOR_KEY
from afpe.search.recorder import HOST_KEY, NODE_KEY
from afpe.search.shipped_specs import spec_path
from afpe.service.cluster.slurm import job_ports
from afpe.service.cluster.topology import free_port

ROOT = Path(__file__).resolve().parents[3]
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")
TINY = [  # the quickstart in seconds: one tiny epoch, 64 training cells, two trials at a time, no repeats
    *("--set", "n_trials=2", "--set", "trainer.epochs=1", "--set", "repeats=null"),
    *("--set", "task_options.n_train=64", "--set", "task_options.n_val=16", "--set", "resources.max_concurrent=2"),
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
    """A two-node Slurm of this test's own; `env` points its client commands (and the jobs) at it."""

    root: Path
    cluster: str
    env: dict[str, str]
    addresses: dict[str, str]  # node (host) name -> IP address: this host's, the other host's (a network namespace)
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
def slurm(other_host) -> Iterator[LocalSlurm]:  # noqa: ANN001 - conftest's OtherHost
    missing = [program for program in PROGRAMS if shutil.which(program) is None]
    if missing:
        message = f"no Slurm here (missing: {', '.join(missing)}; Debian: apt-get install slurm-wlm munge)"
        if os.environ.get("CI"):
            pytest.fail(f"CI: {message}; .ci/run installs them")
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="afpe-slurm-", dir="/tmp"))  # short: munge's and slurmd's sockets
    cluster = f"afpe{uuid.uuid4().hex[:8]}"
    # Slurm runs a job's script on its first node by name: this host's, whose PostgreSQL listens on 127.0.0.1 only
    host = socket.gethostname().split(".")[0]
    second = f"{host}-2"
    addresses = {host: other_host.head_ip, second: other_host.ip}
    slurm = LocalSlurm(root, cluster, {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}, addresses)
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
        for folder in ("state", "spool", f"spool/{host}", f"spool/{second}"):
            (root / folder).mkdir()
        settings = {
            "ClusterName": cluster,
            "SlurmctldHost": f"{host}({other_host.head_ip})",  # an address both nodes reach
            "SlurmctldPort": free_port(),
            "SlurmdPort": free_port(),
            "SlurmUser": "root",
            "SlurmdUser": "root",
            "AuthType": "auth/munge",
            "CredType": "cred/munge",
            "AuthInfo": f"socket={socket_path}",
            "StateSaveLocation": root / "state",
            "SlurmdSpoolDir": root / "spool" / "%n",  # %n: the node's name
            "SlurmctldPidFile": root / "slurmctld.pid",
            "SlurmdPidFile": root / "slurmd-%n.pid",
            "SlurmctldLogFile": root / "slurmctld.log",
            "SlurmdLogFile": root / "slurmd-%n.log",
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
        }
        (root / "slurm.conf").write_text(
            "".join(f"{key}={value}\n" for key, value in settings.items())
            + "".join(f"NodeName={name} NodeAddr={ip} CPUs=2 State=UNKNOWN\n" for name, ip in addresses.items())
            + "PartitionName=afpe Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
        )
        start(slurm, "slurmctld", ["slurmctld", "-D", "-i"])
        # Each slurmd (and so its jobs) in a mount namespace of its own whose /etc/hosts names both nodes, as a
        # cluster's DNS does; the second one in the other host's network namespace, with a host name of its own.
        # The filesystem stays shared (munge's socket and key, the venv, $HOME), as a cluster's shared one.
        hosts = root / "hosts"
        hosts.write_text("127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in slurm.addresses.items()))
        slurmd = f"mount --bind {hosts} /etc/hosts && exec slurmd -D -N"
        start(slurm, "slurmd", ["unshare", "--mount", "sh", "-c", f"{slurmd} {host}"])
        namespace = f"--net=/run/netns/{other_host.namespace}"  # not `ip netns exec`: its new /sys lacks cgroups
        (root / "resolv.conf").write_text("")  # no DNS server: Ray's gRPC would wait on this host's, unreachable
        own = f"hostname {second} && mount --bind {root / 'resolv.conf'} /etc/resolv.conf"
        second_slurmd = f"{own} && {slurmd} {second}"
        start(slurm, "slurmd-2", ["nsenter", namespace, "unshare", "--uts", "--mount", "sh", "-c", second_slurmd])
        states = lambda: slurm.run("sinfo", "--noheader", "--Node", "--format=%N %T")  # noqa: E731
        logs = lambda: "\n".join(path.read_text()[-2000:] for path in sorted(root.glob("slurmd*")))  # noqa: E731
        wait_until(lambda: states().count(" idle\n") == 2, 60, "two Slurm nodes idle", lambda: states() + logs())
        yield slurm
    finally:
        queue = ["squeue", "--noheader", "--format=%i"]  # this cluster's jobs only: SLURM_CONF names it
        deadline = time.monotonic() + 60  # a job's script stops its Ray and removes its files as it ends
        while (jobs := subprocess.run(queue, env=slurm.env, capture_output=True, text=True).stdout.split()) and (
            time.monotonic() < deadline
        ):
            subprocess.run(["scancel", *jobs], env=slurm.env, capture_output=True)
            time.sleep(1)
        for daemon in reversed(slurm.daemons):  # the slurmds, slurmctld, munged: by PID
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
    here = {"--nodes": "2", "--storage": postgres_url}  # the two nodes and the test's database
    assert sorted(words[3:-2:2]) == sorted(here), "the test replaces exactly the values of the README's flags"
    # a CPU per node and a CPU per trial (the quickstart's): the two trials at a time run one on each node's Ray
    arguments = [word for flag in words[3:-2:2] for word in (flag, here[flag])] + ["--cpus-per-node", "1", *TINY]
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
        except (KeyError, optuna.exceptions.StorageInternalError):  # no study yet; its tables being made meanwhile
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
    head = slurm.job_state(first)["BatchHost"]
    assert head == min(slurm.addresses), "the Ray head and the driver run on the job's first node"
    with socket.create_connection((slurm.addresses[head], job_ports(first)["gcs_port"]), timeout=5):
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
    head = f"head {state['BatchHost']}:{job_ports(second)['gcs_port']}"
    assert f"Ray on 2 node(s), {head}" in output, output
    assert "study quickstart: 2/2 finished" in output, output
    assert not slurm.processes_of(second) and not Path(f"/tmp/afpe-ray-{second}").exists()
    after = {trial.number: trial for trial in trials()}
    resumed = {number: trial.state for number, trial in after.items()}
    # job 1's trials are kept: those it left unfinished, RUNNING or WAITING (a prior enqueued that never started),
    # failed as stale by the resume, as any trial a dead driver left (`fail_stale_trials`); the priors run again
    unfinished = (TrialState.RUNNING, TrialState.WAITING)
    for trial in left:
        assert resumed[trial.number] == (TrialState.FAIL if trial.state in unfinished else trial.state)
        if trial.state in unfinished:
            assert "driver" in after[trial.number].user_attrs["error"], after[trial.number].user_attrs
    assert len(resumed) > len(left) and list(resumed.values()).count(TrialState.COMPLETE) == 2, resumed
    # job 2 ran both (job 1 was cancelled as its first began), at once: one on each node's Ray
    done = [trial.user_attrs for trial in trials() if trial.state == TrialState.COMPLETE]
    ran_on = [(attrs[HOST_KEY], attrs[NODE_KEY]) for attrs in done]
    assert sorted(host for host, _ in ran_on) == sorted(slurm.addresses) and len(set(ran_on)) == 2, ran_on
    # its two trials are the quickstart's first two priors (n_trials=2: the priors first), each finished once
    priors = [prior.names for prior in load_spec(spec_path("quickstart")).search_space().priors[:2]]
    assert sorted(tuple(attrs[PRIOR_KEY]) for attrs in done) == sorted(priors), done

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
