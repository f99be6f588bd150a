"""Every run, attempt and verdict in one SQLite file (WAL mode, versioned schema).

Each finished verdict is committed on its own, so an interrupted run loses nothing that was
verified. The verdict cache is keyed by (code hash, problem hash, device key).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from kernelscale.problems.problem import Problem
from kernelscale.propose.base import Attempt, Candidate
from kernelscale.verify.verdict import Verdict

SCHEMA_VERSION = 3  # v2: the baselines table; v3: calibrations (older files gain them on open)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS problems (
    hash TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, command TEXT NOT NULL, target TEXT NOT NULL,
    options TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL, finished_at REAL);
CREATE TABLE IF NOT EXISTS run_problems (
    run_id INTEGER NOT NULL REFERENCES runs(id), problem_hash TEXT NOT NULL REFERENCES problems(hash),
    position INTEGER NOT NULL, status TEXT NOT NULL, seconds_spent REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, problem_hash));
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, code_hash TEXT NOT NULL, problem_hash TEXT NOT NULL,
    device_key TEXT NOT NULL, status TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS verdict_key ON verdicts (code_hash, problem_hash, device_key);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL REFERENCES runs(id),
    problem_hash TEXT NOT NULL, code_hash TEXT NOT NULL, code TEXT NOT NULL, proposer TEXT NOT NULL,
    parents TEXT NOT NULL, provenance TEXT NOT NULL, usage TEXT NOT NULL,
    verdict_id INTEGER NOT NULL REFERENCES verdicts(id), status TEXT NOT NULL,
    time_ms REAL, speedup REAL, elapsed_s REAL NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS attempts_run ON attempts (run_id, problem_hash);
CREATE TABLE IF NOT EXISTS baselines (
    problem_hash TEXT NOT NULL, device_key TEXT NOT NULL, name TEXT NOT NULL, time_ms REAL NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (problem_hash, device_key, name));
CREATE TABLE IF NOT EXISTS calibrations (
    problem_hash TEXT NOT NULL, device_key TEXT NOT NULL, host TEXT NOT NULL, body TEXT NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (problem_hash, device_key, host));
"""


@dataclass
class RunRecord:
    id: int
    command: str
    target: str
    options: dict
    status: str
    created_at: float
    finished_at: float | None


@dataclass
class RunProblem:
    """One problem of a run: where it stands and the seconds spent on it (cumulative over resumes)."""

    run_id: int
    problem_hash: str
    position: int
    status: str
    seconds_spent: float
    problem: Problem

    @property
    def name(self) -> str:
        return self.problem.name


@dataclass
class AttemptRow:
    """An attempt as reports list it: its problem's name, who proposed it, when, and its verdict."""

    id: int
    problem_hash: str
    problem: str
    proposer: str
    elapsed_s: float
    usage: dict
    verdict: Verdict


class StoreError(RuntimeError):
    pass


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        self.db.executescript(SCHEMA)
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row["value"]) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema v{row['value']}, newer than this kernelscale (v{SCHEMA_VERSION})"
            )
        elif int(row["value"]) < SCHEMA_VERSION:
            # v1 -> v2 -> v3 only add tables, which the script above has just created.
            self.db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))

    # -- runs ---------------------------------------------------------------------------------
    def create_run(self, command: str, target: str, options: dict) -> int:
        cur = self.db.execute(
            "INSERT INTO runs (command, target, options, status, created_at) VALUES (?,?,?,?,?)",
            (command, target, json.dumps(options, default=str), "running", time.time()),
        )
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str) -> None:
        self.db.execute("UPDATE runs SET status=?, finished_at=? WHERE id=?", (status, time.time(), run_id))

    def reopen_run(self, run_id: int) -> None:
        self.db.execute("UPDATE runs SET status='running', finished_at=NULL WHERE id=?", (run_id,))

    def discard_run(self, run_id: int) -> None:
        """Forget a run that made no attempt (it failed before its first): nothing to resume."""
        if self.db.execute("SELECT 1 FROM attempts WHERE run_id=? LIMIT 1", (run_id,)).fetchone():
            raise StoreError(f"run {run_id} has attempts; it is kept")
        self.db.execute("DELETE FROM run_problems WHERE run_id=?", (run_id,))
        self.db.execute("DELETE FROM runs WHERE id=?", (run_id,))

    def get_run(self, run_id: int) -> RunRecord:
        row = self.db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id} in {self.path}")
        return _run_record(row)

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_run_record(r) for r in rows]

    # -- problems -----------------------------------------------------------------------------
    def add_problem(self, run_id: int, problem: Problem, position: int = 0) -> str:
        key = problem.content_hash()
        self.db.execute(
            "INSERT OR IGNORE INTO problems VALUES (?,?,?,?)",
            (key, problem.name, problem.kind, json.dumps(problem.to_json())),
        )
        self.db.execute(
            "INSERT OR IGNORE INTO run_problems (run_id, problem_hash, position, status) VALUES (?,?,?,?)",
            (run_id, key, position, "pending"),
        )
        return key

    def set_problem_status(
        self, run_id: int, problem_hash: str, status: str, seconds: float | None = None
    ) -> None:
        if seconds is None:
            self.db.execute(
                "UPDATE run_problems SET status=? WHERE run_id=? AND problem_hash=?",
                (status, run_id, problem_hash),
            )
        else:
            self.db.execute(
                "UPDATE run_problems SET status=?, seconds_spent=? WHERE run_id=? AND problem_hash=?",
                (status, seconds, run_id, problem_hash),
            )

    def run_problems(self, run_id: int) -> list[RunProblem]:
        rows = self.db.execute(
            "SELECT rp.*, p.spec FROM run_problems rp JOIN problems p ON p.hash = rp.problem_hash "
            "WHERE rp.run_id=? ORDER BY rp.position",
            (run_id,),
        ).fetchall()
        return [
            RunProblem(
                r["run_id"],
                r["problem_hash"],
                r["position"],
                r["status"],
                float(r["seconds_spent"] or 0.0),
                Problem.from_json(json.loads(r["spec"])),
            )
            for r in rows
        ]

    # -- verdicts (the cache) -------------------------------------------------------------------
    def cached_verdict(
        self, code_hash: str, problem_hash: str, device_key: str
    ) -> tuple[int, Verdict] | None:
        row = self.db.execute(
            "SELECT id, body FROM verdicts WHERE code_hash=? AND problem_hash=? AND device_key=? "
            "ORDER BY id DESC LIMIT 1",
            (code_hash, problem_hash, device_key),
        ).fetchone()
        if row is None:
            return None
        return int(row["id"]), Verdict.from_json(json.loads(row["body"]))

    def add_verdict(self, code_hash: str, problem_hash: str, device_key: str, verdict: Verdict) -> int:
        cur = self.db.execute(
            "INSERT INTO verdicts (code_hash, problem_hash, device_key, status, body, created_at) VALUES (?,?,?,?,?,?)",
            (code_hash, problem_hash, device_key, verdict.status, verdict.dumps(), time.time()),
        )
        return int(cur.lastrowid)

    # -- baselines measured on a device (reused by later runs) ---------------------------------
    def baselines(self, problem_hash: str, device_key: str) -> dict[str, float]:
        rows = self.db.execute(
            "SELECT name, time_ms FROM baselines WHERE problem_hash=? AND device_key=?",
            (problem_hash, device_key),
        ).fetchall()
        return {r["name"]: float(r["time_ms"]) for r in rows}

    def save_baselines(self, problem_hash: str, device_key: str, times: dict[str, float]) -> None:
        for name, ms in times.items():
            self.db.execute(
                "INSERT OR REPLACE INTO baselines VALUES (?,?,?,?,?)",
                (problem_hash, device_key, name, float(ms), time.time()),
            )

    def forget_baselines(self, problem_hash: str, device_key: str) -> None:
        self.db.execute(
            "DELETE FROM baselines WHERE problem_hash=? AND device_key=?", (problem_hash, device_key)
        )

    # -- a trusted runner's step costs per host (reused by later runs on that host) ------------
    def calibrations(self, problem_hash: str, device_key: str) -> list[dict]:
        """Every host's stored calibration for this problem and device; the oracle picks its own."""
        rows = self.db.execute(
            "SELECT body FROM calibrations WHERE problem_hash=? AND device_key=? ORDER BY created_at DESC",
            (problem_hash, device_key),
        ).fetchall()
        return [json.loads(r["body"]) for r in rows]

    def save_calibration(self, problem_hash: str, device_key: str, calibration: dict) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO calibrations VALUES (?,?,?,?,?)",
            (problem_hash, device_key, str(calibration["host"]), json.dumps(calibration), time.time()),
        )

    def forget_calibrations(self, problem_hash: str, device_key: str) -> None:
        self.db.execute(
            "DELETE FROM calibrations WHERE problem_hash=? AND device_key=?", (problem_hash, device_key)
        )

    # -- attempts -----------------------------------------------------------------------------
    def add_attempt(self, run_id: int, problem_hash: str, attempt: Attempt, verdict_id: int) -> int:
        cand, verdict = attempt.candidate, attempt.verdict
        cur = self.db.execute(
            "INSERT INTO attempts (run_id, problem_hash, code_hash, code, proposer, parents, provenance, usage,"
            " verdict_id, status, time_ms, speedup, elapsed_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                run_id,
                problem_hash,
                cand.code_hash,
                cand.code,
                cand.proposer,
                json.dumps(cand.parents),
                json.dumps(cand.provenance, default=str),
                json.dumps(cand.usage),
                verdict_id,
                verdict.status,
                verdict.time_ms,
                attempt.best_speedup,
                attempt.elapsed_s,
                time.time(),
            ),
        )
        return int(cur.lastrowid)

    def attempts(self, run_id: int, problem_hash: str | None = None) -> list[Attempt]:
        query = "SELECT a.*, v.body FROM attempts a JOIN verdicts v ON v.id = a.verdict_id WHERE a.run_id=?"
        args: list = [run_id]
        if problem_hash:
            query += " AND a.problem_hash=?"
            args.append(problem_hash)
        rows = self.db.execute(query + " ORDER BY a.id", args).fetchall()
        return [_attempt(r) for r in rows]

    def attempt_rows(self, run_id: int) -> list[AttemptRow]:
        """Flat rows for reports: one per attempt with its problem name, without its code."""
        rows = self.db.execute(
            "SELECT a.id, a.problem_hash, p.name AS problem, a.proposer, a.elapsed_s, a.usage, v.body"
            " FROM attempts a JOIN problems p ON p.hash = a.problem_hash"
            " JOIN verdicts v ON v.id = a.verdict_id WHERE a.run_id=? ORDER BY a.id",
            (run_id,),
        ).fetchall()
        return [
            AttemptRow(
                r["id"],
                r["problem_hash"],
                r["problem"],
                r["proposer"],
                r["elapsed_s"],
                json.loads(r["usage"] or "{}"),
                Verdict.from_json(json.loads(r["body"])),
            )
            for r in rows
        ]


def _run_record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        command=row["command"],
        target=row["target"],
        options=json.loads(row["options"]),
        status=row["status"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


def _attempt(row: sqlite3.Row) -> Attempt:
    candidate = Candidate(
        code=row["code"],
        proposer=row["proposer"],
        parents=json.loads(row["parents"]),
        provenance=json.loads(row["provenance"]),
        usage=json.loads(row["usage"]),
    )
    verdict = Verdict.from_json(json.loads(row["body"]))
    return Attempt(candidate=candidate, verdict=verdict, attempt_id=row["id"], elapsed_s=row["elapsed_s"])
