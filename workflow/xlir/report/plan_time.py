"""The cost plan of a study before it runs: the jobs Snakemake would run (`snakemake -n`), each
given a time from measured benchmark files (`results/timing/<rule>/...tsv`, written by every
rule's `benchmark:` directive), then scheduled on N cores.

Each job's estimate comes from the closest measurement there is, and the plan says which:

- `exact`: the same job was measured (same rule and wildcards);
- `rule+target`: the mean of the rule's measured jobs with the same last wildcard, e.g. every
  `encode` of the benchmark `xquad-r`, or every `train` of `seed13`;
- `rule`: the mean of every measured job of the rule;
- `unmeasured`: no measurement of the rule; counted as 0 s and listed.

The projection is a list schedule (Graham's, longest remaining path first) of the jobs on
`cores` slots, each job holding `min(threads, cores)` of them, with the dependencies read from
the jobs' inputs and outputs. Snakemake's own scheduler orders jobs differently, and measured
times carry the contention of the run they came from (two 1-thread jobs on 2 cores), so the
projection is an estimate; its lower bounds (CPU time / cores, the critical path) are exact for
the estimates.
"""

from __future__ import annotations

import heapq
import json
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

from xlir.common.io import InputError, get_logger, read_tsv

log = get_logger(__name__)

#: the estimate sources, closest first
SOURCES = ("exact", "rule+target", "rule", "unmeasured")
_RULE_LINE = re.compile(r"^(?:local)?rule (\w+):\s*$")
_FIELD_LINE = re.compile(r"^\s+(\w+): ?(.*)$")


@dataclass(frozen=True)
class PlannedJob:
    """One job of a dry run."""

    jobid: int
    rule: str
    benchmark: str | None = None
    threads: int = 1
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    @property
    def timing_key(self) -> str | None:
        """The benchmark file below the `timing/` folder, without `.tsv`: `encode/e5-small/...`."""
        if not self.benchmark:
            return None
        parts = Path(self.benchmark).with_suffix("").parts
        if "timing" not in parts:
            return "/".join(parts)
        return "/".join(parts[len(parts) - parts[::-1].index("timing") :])


@dataclass
class Estimate:
    job: PlannedJob
    seconds: float
    source: str


@dataclass
class CostPlan:
    estimates: list[Estimate]
    cores: int
    wall_seconds: float
    critical_path_seconds: float
    measured_jobs: int
    timing_dirs: list[str] = field(default_factory=list)

    @property
    def cpu_seconds(self) -> float:
        return sum(e.seconds * min(e.job.threads, self.cores) for e in self.estimates)

    def per_rule(self) -> list[dict]:
        rows: dict[str, dict] = {}
        for e in self.estimates:
            row = rows.setdefault(
                e.job.rule, {"rule": e.job.rule, "jobs": 0, "seconds": 0.0, "sources": defaultdict(int)}
            )
            row["jobs"] += 1
            row["seconds"] += e.seconds
            row["sources"][e.source] += 1
        out = []
        for row in sorted(rows.values(), key=lambda r: (-r["seconds"], r["rule"])):
            sources = ", ".join(
                f"{n} {s}" for s, n in sorted(row["sources"].items(), key=lambda i: SOURCES.index(i[0]))
            )
            out.append(
                {
                    "rule": row["rule"],
                    "jobs": row["jobs"],
                    "mean s": round(row["seconds"] / row["jobs"], 1),
                    "total s": round(row["seconds"], 1),
                    "estimated from": sources,
                }
            )
        return out

    @property
    def unmeasured_rules(self) -> list[str]:
        return sorted({e.job.rule for e in self.estimates if e.source == "unmeasured" and e.job.benchmark})

    def to_dict(self) -> dict:
        return {
            "jobs": len(self.estimates),
            "cores": self.cores,
            "projected_wall_s": round(self.wall_seconds, 1),
            "cpu_s": round(self.cpu_seconds, 1),
            "lower_bound_cores_s": round(self.cpu_seconds / self.cores, 1),
            "critical_path_s": round(self.critical_path_seconds, 1),
            "measured_jobs": self.measured_jobs,
            "timing_dirs": self.timing_dirs,
            "unmeasured_rules": self.unmeasured_rules,
            "rules": self.per_rule(),
        }


# ------------------------------------------------------------------ the dry run
def _split_files(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def parse_dry_run(text: str) -> list[PlannedJob]:
    """The jobs of `snakemake -n`'s printout (rule, jobid, benchmark, threads, input, output)."""
    jobs: list[PlannedJob] = []
    current: dict | None = None

    def close() -> None:
        # a target rule (`all`: no output, no benchmark) is no work
        if current is not None and "jobid" in current and (current.get("output") or current.get("benchmark")):
            jobs.append(
                PlannedJob(
                    jobid=int(current["jobid"]),
                    rule=current["rule"],
                    benchmark=current.get("benchmark") or None,
                    threads=int(current.get("threads") or 1),
                    inputs=_split_files(current.get("input", "")),
                    outputs=_split_files(current.get("output", "")),
                )
            )

    for line in text.splitlines():
        rule = _RULE_LINE.match(line)
        if rule:
            close()
            current = {"rule": rule.group(1)}
            continue
        if current is None:
            continue
        match = _FIELD_LINE.match(line)
        if match and match.group(1) in ("input", "output", "jobid", "benchmark", "threads"):
            current[match.group(1)] = match.group(2).strip()
        elif not line.startswith((" ", "\t")):
            close()
            current = None
    close()
    return jobs


def dry_run(
    snakefile: Path, configfiles: list[Path], targets: list[str], directory: Path | None, forceall: bool
) -> str:
    """`snakemake -n` of the grid (no shell: the arguments go to the process as a list)."""
    command = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(snakefile), *targets]
    default = snakefile.resolve().parent / "config" / "config.yaml"
    if not configfiles and directory is not None and default.is_file():
        configfiles = [default]  # the Snakefile's `configfile:` is read relative to --directory
    if configfiles:
        command += ["--configfile", *map(str, configfiles)]
    if directory is not None:
        command += ["--directory", str(directory)]
    if forceall:
        command.append("--forceall")
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise InputError(
            f"snakemake -n failed ({completed.returncode}): {(completed.stdout + completed.stderr)[-3000:]}"
        )
    return completed.stdout + completed.stderr


# ------------------------------------------------------------------ the measurements
def read_measured(timing_dirs: list[Path]) -> dict[str, float]:
    """{timing key: wall seconds} from Snakemake benchmark files (the last row of each); a later
    folder overrides an earlier one on the same key."""
    measured: dict[str, float] = {}
    for root in timing_dirs:
        if not root.exists():  # a study not run yet: every job is listed as unmeasured
            log.warning("%s: no such folder; no measured job times from it", root)
            continue
        if not root.is_dir():
            raise InputError(f"{root}: not a folder of Snakemake benchmark files (results/timing)")
        for path in sorted(root.rglob("*.tsv")):
            try:
                rows = read_tsv(path)
            except (OSError, UnicodeDecodeError) as error:
                raise InputError(f"{path}: unreadable benchmark file ({error})") from error
            if not rows:
                continue
            try:
                seconds = float(rows[-1]["s"])
            except (KeyError, TypeError, ValueError) as error:
                raise InputError(f"{path}: expected a Snakemake benchmark file with a column 's'") from error
            measured[str(path.relative_to(root).with_suffix(""))] = seconds
    return measured


def estimate_jobs(jobs: list[PlannedJob], measured: dict[str, float]) -> list[Estimate]:
    by_rule: dict[str, list[float]] = defaultdict(list)
    by_target: dict[tuple[str, str], list[float]] = defaultdict(list)
    for key, seconds in measured.items():
        parts = key.split("/")
        by_rule[parts[0]].append(seconds)
        by_target[(parts[0], parts[-1])].append(seconds)
    estimates = []
    for job in jobs:
        key = job.timing_key
        if key is not None and key in measured:
            estimates.append(Estimate(job, measured[key], "exact"))
            continue
        # the benchmark file's folder names the work (train_at_selected_lr writes train's files)
        folder = key.split("/")[0] if key else job.rule
        leaf = key.split("/")[-1] if key else None
        if key is not None and (folder, leaf) in by_target and "/" in key:
            estimates.append(Estimate(job, fmean(by_target[(folder, leaf)]), "rule+target"))
        elif folder in by_rule:
            estimates.append(Estimate(job, fmean(by_rule[folder]), "rule"))
        else:
            estimates.append(Estimate(job, 0.0, "unmeasured"))
    return estimates


# ------------------------------------------------------------------ the schedule
def dependencies(jobs: list[PlannedJob]) -> dict[int, set[int]]:
    """{jobid: the jobids it waits for}: a job waits for the job making any of its inputs (the
    file itself, or a folder output holding it)."""
    producer: dict[str, int] = {}
    for job in jobs:
        for output in job.outputs:
            producer[output.rstrip("/")] = job.jobid
    needs: dict[int, set[int]] = {job.jobid: set() for job in jobs}
    for job in jobs:
        for path in job.inputs:
            candidate = path.rstrip("/")
            while candidate:
                if candidate in producer and producer[candidate] != job.jobid:
                    needs[job.jobid].add(producer[candidate])
                    break
                if "/" not in candidate:
                    break
                candidate = candidate.rsplit("/", 1)[0]
    return needs


def schedule(estimates: list[Estimate], cores: int) -> tuple[float, float]:
    """(projected wall seconds, critical path seconds): a list schedule on `cores` slots."""
    if cores < 1:
        raise InputError(f"--cores: {cores}; expected at least 1")
    jobs = {e.job.jobid: e for e in estimates}
    needs = dependencies([e.job for e in estimates])
    users: dict[int, list[int]] = defaultdict(list)
    for jobid, waits in needs.items():
        for other in waits:
            users[other].append(jobid)
    # longest path from each job to the end (the priority), by reverse topological order
    order = _topological(needs)
    tail: dict[int, float] = {}
    for jobid in reversed(order):
        tail[jobid] = jobs[jobid].seconds + max((tail[u] for u in users[jobid]), default=0.0)
    critical = max(tail.values(), default=0.0)
    waiting = {jobid: len(waits) for jobid, waits in needs.items()}
    ready = [(-tail[j], j) for j, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    running: list[tuple[float, int]] = []
    free, now = cores, 0.0
    while ready or running:
        deferred = []
        while ready:
            priority, jobid = heapq.heappop(ready)
            need = min(jobs[jobid].job.threads, cores)
            if need <= free:
                free -= need
                heapq.heappush(running, (now + jobs[jobid].seconds, jobid))
            else:
                deferred.append((priority, jobid))
        for item in deferred:
            heapq.heappush(ready, item)
        if not running:
            break
        now, done = heapq.heappop(running)
        finished = [done]
        while running and running[0][0] <= now:
            finished.append(heapq.heappop(running)[1])
        for jobid in finished:
            free += min(jobs[jobid].job.threads, cores)
            for user in users[jobid]:
                waiting[user] -= 1
                if waiting[user] == 0:
                    heapq.heappush(ready, (-tail[user], user))
    return now, critical


def _topological(needs: dict[int, set[int]]) -> list[int]:
    remaining = {j: set(w) for j, w in needs.items()}
    users: dict[int, list[int]] = defaultdict(list)
    for j, waits in needs.items():
        for w in waits:
            users[w].append(j)
    order, frontier = [], sorted(j for j, w in remaining.items() if not w)
    while frontier:
        j = frontier.pop()
        order.append(j)
        for u in users[j]:
            remaining[u].discard(j)
            if not remaining[u]:
                frontier.append(u)
    if len(order) != len(needs):
        raise InputError("the dry run's jobs form a cycle (inputs and outputs); cannot schedule them")
    return order


def plan_time(dry_run_text: str, timing_dirs: list[Path], cores: int) -> CostPlan:
    jobs = parse_dry_run(dry_run_text)
    if not jobs:
        raise InputError("the dry run lists no jobs (nothing to do, or not `snakemake -n` output)")
    measured = read_measured(timing_dirs)
    estimates = estimate_jobs(jobs, measured)
    wall, critical = schedule(estimates, cores)
    return CostPlan(estimates, cores, wall, critical, len(measured), [str(d) for d in timing_dirs])


# ------------------------------------------------------------------ output
def _hours(seconds: float) -> str:
    return f"{seconds:,.0f} s ({seconds / 3600:.2f} h)"


def format_plan(plan: CostPlan) -> str:
    rows = plan.per_rule()
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in ("rule", "jobs", "mean s", "total s")}
    lines = [
        f"Cost plan: {len(plan.estimates)} jobs (snakemake -n), estimates from {plan.measured_jobs} measured jobs "
        f"in {', '.join(plan.timing_dirs) or 'no timing folder'}",
        "",
        "  ".join(k.ljust(widths[k]) if k == "rule" else k.rjust(widths[k]) for k in widths) + "  estimated from",
    ]
    for r in rows:
        lines.append(
            "  ".join(str(r[k]).ljust(widths[k]) if k == "rule" else str(r[k]).rjust(widths[k]) for k in widths)
            + f"  {r['estimated from']}"
        )
    lines += [
        "",
        f"CPU time (job seconds x cores held): {_hours(plan.cpu_seconds)}",
        f"lower bounds: CPU time / {plan.cores} cores {_hours(plan.cpu_seconds / plan.cores)}; "
        f"critical path {_hours(plan.critical_path_seconds)}",
        f"projected wall time at {plan.cores} cores (list schedule, longest path first): {_hours(plan.wall_seconds)}",
    ]
    if plan.unmeasured_rules:
        lines.append(f"unmeasured (counted as 0 s): {', '.join(plan.unmeasured_rules)}")
    return "\n".join(lines)


def plan_command(
    *,
    snakefile: Path,
    configfiles: list[Path],
    targets: list[str],
    timing_dirs: list[Path],
    cores: int,
    directory: Path | None,
    forceall: bool,
    dry_run_file: Path | None,
    as_json: bool,
) -> str:
    if dry_run_file is not None:
        try:
            text = dry_run_file.read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(f"{dry_run_file}: cannot read the dry run ({error})") from error
    else:
        text = dry_run(snakefile, configfiles, targets, directory, forceall)
    plan = plan_time(text, timing_dirs, cores)
    return json.dumps(plan.to_dict(), indent=2) if as_json else format_plan(plan)
