"""Shared by the campaign tests: a tiny Si8 campaign config and a throw-away PostgreSQL server."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import xtalnn

PYTHON = sys.executable
# subprocesses import the same xtalnn as this process (the installed package in CI, python/ in development)
ENV = {**os.environ, "PYTHONPATH": str(Path(xtalnn.__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1",
       "OMP_WAIT_POLICY": "PASSIVE"}

TINY_TOML = """
composition = "Si8"
seed = 3
max_cycles = 2
overlap = true

[ga]
systems = ["cubic", "hexagonal"]
population = 5
children = 2
generations = 1
recommendations = 7
relax_steps = 15
final_generations = 1
final_seeds = 1
final_candidates = 3
final_relabel = 2

[oracle]
calculator = "sw-si"
final_relax_steps = 30
final_relax_best = 2

[training]
hidden = [6, 6]
epochs = 8
patience = 5
cutoff = 4.0
acsf_radial = 5
acsf_angular_eta = 2
force_fraction = 1.0
min_loss = 0.01
energy_window = 50.0

[convergence]
min_structures = 1000
max_val_rmse = 0.08

[database]
url = "{db}"

[executor]
workers = 2
"""


def tiny_config(folder, db: str = "campaign.db", **replace) -> str:
    """Write the tiny campaign TOML into ``folder``; returns its path."""
    text = TINY_TOML.replace("{db}", db)
    for old, new in replace.items():
        text = text.replace(old, new)
    path = os.path.join(folder, "tiny.toml")
    with open(path, "w") as fh:
        fh.write(text)
    return path


def run_cli(*args, env=None, timeout=900):
    return subprocess.run([PYTHON, "-m", "xtalnn.cli", *map(str, args)], capture_output=True, text=True,
                          env=env or ENV, timeout=timeout)


def labelled(url: str) -> dict:
    """{uid: oracle energy (eV/atom) or 'failed'} of frame 0 rows, and asserts each uid is stored once."""
    import ase.db

    db = ase.db.connect(url)
    out: dict = {}
    for row in db.select(frame=0):
        assert row.uid not in out, f"{row.uid} labelled twice"
        out[row.uid] = row.get("oracle_energy", "failed")
    return out


# ---------------------------------------------------------------------------- PostgreSQL
def _find(binary: str) -> str | None:
    found = shutil.which(binary)
    if found:
        return found
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{binary}"))
    return hits[-1] if hits else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A real PostgreSQL server in a temporary folder on 127.0.0.1 (initdb/pg_ctl as a normal user:
    as root the server runs as ``nobody``), user ``xtalnn`` with a password (scram-sha-256)."""

    user = "xtalnn"

    def __init__(self):
        initdb, pg_ctl = _find("initdb"), _find("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's "
                               "`postgresql` package (.ci/run does)")
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.root = tempfile.mkdtemp(prefix="xtalnn-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = _free_port()
        self.password = "pw-" + os.urandom(6).hex()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
            self.prefix = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
        pwfile = os.path.join(self.root, "pw")
        with open(pwfile, "w") as fh:
            fh.write(self.password + "\n")
        if self.prefix:
            os.chown(pwfile, nobody.pw_uid, nobody.pw_gid)
        self._run(self.initdb, "-D", self.data, "-U", self.user, f"--pwfile={pwfile}", "--auth=scram-sha-256",
                  "-E", "UTF8", "--locale=C")
        self._run(self.pg_ctl, "-D", self.data, "-l", os.path.join(self.root, "log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=off", "start")
        self.started = True
        with open(os.path.join(self.data, "postmaster.pid")) as fh:
            self.pid = int(fh.readline())
        env = {**os.environ, "PGPASSWORD": self.password}
        import psycopg2

        for _ in range(50):
            try:
                con = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres",
                                       password=self.password)
                break
            except psycopg2.OperationalError:
                time.sleep(0.2)
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("CREATE DATABASE campaign")
            cur.execute("CREATE DATABASE campaign2")
        con.close()
        self.env = env

    def url(self, db: str = "campaign") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def _run(self, *cmd):
        out = subprocess.run(self.prefix + list(cmd), capture_output=True, text=True, cwd=self.root)
        if out.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")

    def stop(self):
        """Stop the server (pg_ctl, then SIGKILL to its postmaster if still alive) and remove its folder."""
        if getattr(self, "started", False):
            subprocess.run(self.prefix + [self.pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop"],
                           capture_output=True, cwd=self.root)
            deadline = time.time() + 30
            while _alive(self.pid) and time.time() < deadline:
                time.sleep(0.2)
            if _alive(self.pid):
                os.kill(self.pid, 9)
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not a server
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------------------- TLS Dask cluster
def write_certificates(folder) -> dict:
    """A throw-away CA and two certificates it signs (scheduler/worker for 127.0.0.1, client), as PEM
    files in ``folder``; returns their paths. Another CA's client certificate too (must be refused)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    paths = {}

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def save(stem, key, cert):
        key_path, cert_path = os.path.join(folder, f"{stem}.key"), os.path.join(folder, f"{stem}.pem")
        with open(key_path, "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        with open(cert_path, "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
        paths[stem] = cert_path
        paths[f"{stem}_key"] = key_path

    def certificate(cn, key, issuer, issuer_key, ca=False):
        builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    for ca_stem, stems in (("ca", ("server", "client")), ("other_ca", ("stranger",))):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = certificate(f"xtalnn test {ca_stem}", ca_key, name(f"xtalnn test {ca_stem}"), ca_key, ca=True)
        save(ca_stem, ca_key, ca_cert)
        for stem in stems:
            key = ec.generate_private_key(ec.SECP256R1())
            save(stem, key, certificate(f"xtalnn {stem}", key, ca_cert.subject, ca_key))
    return paths


class TLSCluster:
    """A real Dask scheduler and one worker (``dask scheduler`` / ``dask worker`` processes) on
    tls://127.0.0.1 that accept only certificates signed by the test CA."""

    def __init__(self, folder):
        self.certs = write_certificates(folder)
        self.port = _free_port()
        self.address = f"tls://127.0.0.1:{self.port}"
        c = self.certs
        tls = ["--tls-ca-file", c["ca"], "--tls-cert", c["server"], "--tls-key", c["server_key"]]
        dask = os.path.join(os.path.dirname(PYTHON), "dask")
        self.log = open(os.path.join(folder, "cluster.log"), "w")
        self.procs = [subprocess.Popen([dask, "scheduler", "--protocol", "tls", "--host", "127.0.0.1", "--port",
                                        str(self.port), "--no-dashboard", *tls], env=ENV, stdout=self.log,
                                       stderr=subprocess.STDOUT)]
        self.procs.append(subprocess.Popen([dask, "worker", self.address, "--nthreads", "1", "--nworkers", "1",
                                            "--no-dashboard", "--host", "127.0.0.1", *tls], env=ENV,
                                           stdout=self.log, stderr=subprocess.STDOUT))

    def stop(self):
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.log.close()


def failing_sw(fail_after: int = 3):
    """Stillinger–Weber Si whose ``fail_after``-th calculation raises, like a DFT SCF that does not
    converge mid-relaxation (a real calculator with a real failure mode, for the labelling tests)."""
    from ase.calculators.calculator import CalculationFailed

    from xtalnn.calculators.lammps import sw_si

    calc = sw_si()
    calls = {"n": 0}
    compute = calc.calculate

    def calculate(atoms=None, properties=("energy",), system_changes=None):
        calls["n"] += 1
        if calls["n"] > fail_after:
            raise CalculationFailed("SCF not converged in 250 cycles (failing_sw)")
        return compute(atoms, properties, system_changes) if system_changes is not None else compute(atoms, properties)

    calc.calculate = calculate
    return calc
