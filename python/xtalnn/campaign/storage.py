"""The campaign database (``ase.db``): every labelled structure, as it finishes.

SQLite file by default (a path, relative to the campaign folder), or a PostgreSQL URL
``postgresql://user@host:port/dbname`` for shared campaigns (``ase-db-backends`` + ``psycopg2``).
The password never comes from the URL: libpq reads ``PGPASSWORD`` or ``~/.pgpass``; a URL with a
password is refused and URLs are shown with :func:`redact` only.

Only the campaign's main process writes. One row per oracle frame; key-value pairs:

``uid``           the recommendation's id, e.g. ``c003-cubic-07`` or ``final-cubic-02`` (unique per frame 0)
``frame``         0 = the recommended structure; 1, 2, … frames of the optional oracle relaxation
``cycle``         active-learning cycle (0 for the final relabelling)
``system``        crystal system of the GA run that proposed it
``origin``        ``ga`` (cycle recommendation), ``relax`` (a frame of its oracle relaxation: training data too),
                  ``final`` (final relabelling, and the frames of its relaxation), ``final_relax`` (the
                  oracle's cell relaxation of a final candidate, uid ``<uid>-relaxed``, every frame)
``oracle``        the oracle's spec (``sw-si``, ``gpaw``, …)
``status``        ``ok`` or ``failed`` (the error is in ``data['error']``)
``model``         the fitness that ranked it (``empirical`` or ``cycle-NNN``)
``model_energy``  that fitness's energy (eV/atom) of the structure
``oracle_energy`` the oracle's energy (eV/atom); under ``[ga] pressure`` its enthalpy (E + pV)/N, which
                  the campaign ranks by (the frame's own energy stays E)
``pressure``      GPa, only when not 0
``well_predicted`` |oracle − model| < min_loss (eV/atom): not added to the training set
``relax_failed``  the oracle's relaxation failed after the frames stored (error in ``data['error']``)
``started``, ``finished`` Unix times (s) of the oracle call; ``seconds`` its wall time
"""

from __future__ import annotations

import math
import os
import re
from urllib.parse import urlsplit

from ase import Atoms

from xtalnn.campaign.training import is_potential

POSTGRES = ("postgresql://", "postgres://")


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES)


def check_url(url: str) -> None:
    """Refuse a database URL that carries a password (passwords come from PGPASSWORD / ~/.pgpass)."""
    if not url:
        raise ValueError("[database] url is empty")
    if is_postgres(url):
        parts = urlsplit(url)
        if parts.password is not None or re.search(r"(^|[?&])password=", parts.query or ""):
            raise ValueError("[database] url must not contain a password: put it in the PGPASSWORD "
                             "environment variable or in ~/.pgpass")
    elif "://" in url:
        raise ValueError(f"[database] url: only SQLite files and postgresql:// URLs are supported, got "
                         f"{redact(url)}")


def redact(url: str) -> str:
    """The URL without any password (safe for logs and reports)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = re.sub(r"(password=)[^&]*", r"\1***", parts.query or "")
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def resolve(url: str, folder: str) -> str:
    """SQLite paths relative to the campaign folder; URLs unchanged."""
    check_url(url)
    if is_postgres(url):
        return url
    return url if os.path.isabs(url) else os.path.join(folder, url)


class LabelStore:
    """The labelled structures of one campaign in an ase.db database (see the module docstring)."""

    def __init__(self, url: str, folder: str = "."):
        import ase.db

        self.url = resolve(url, folder)
        self.display = redact(self.url)
        if is_postgres(self.url):
            try:
                import ase_db_backends.postgresql  # noqa: F401
                import psycopg2  # noqa: F401
            except ImportError as err:
                raise ModuleNotFoundError("a PostgreSQL campaign database needs ase-db-backends and psycopg2: "
                                          "pip install 'xtalnn[campaign]'") from err
        else:
            os.makedirs(os.path.dirname(os.path.abspath(self.url)) or ".", exist_ok=True)
            if not os.path.exists(self.url):
                # ase.db creates its tables one by one: build the empty database aside and move it
                # into place, so a kill -9 never leaves a half-initialised campaign database
                tmp = f"{self.url}.init.db"
                if os.path.exists(tmp):
                    os.remove(tmp)
                ase.db.connect(tmp, type="db", use_lock_file=False).count()
                os.replace(tmp, self.url)
        try:
            if is_postgres(self.url):
                self.db = ase.db.connect(self.url, type="postgresql")
            else:  # no ase lock file: a kill -9 would leave it behind and block every later write;
                # only the campaign's main process writes, and SQLite locks by itself
                self.db = ase.db.connect(self.url, type="db", use_lock_file=False)
            self.count()
        except Exception as err:
            # psycopg2's messages can quote the DSN: say what failed without it
            raise ConnectionError(f"cannot open the campaign database {self.display}: "
                                  f"{type(err).__name__}: {_scrub(str(err), self.url)}") from None

    def count(self, **selection) -> int:
        return self.db.count(**selection)

    def uids(self) -> set[str]:
        """uids of every recommendation already labelled (ok or failed)."""
        return {row.uid for row in self.db.select(frame=0, columns=["key_value_pairs"])}

    def write(self, uid: str, result: dict, meta: dict) -> None:
        """Store one oracle result (all its frames in one transaction).

        ``result``: the dict of :func:`xtalnn.campaign.labelling.label`; ``meta``: cycle, system,
        origin, oracle, model, model_energy (eV/atom), min_loss (eV/atom) for ``well_predicted``, and
        optionally pressure (GPa): then ``oracle_energy`` is the enthalpy per atom (E + pV)/N that the
        campaign ranks by (the model's ``model_energy`` is its enthalpy too); the frame's energy stays E.
        """
        from xtalnn.search.relax import enthalpy_per_atom

        pressure = float(meta.get("pressure", 0.0))
        base = dict(uid=uid, cycle=int(meta["cycle"]), system=meta["system"], oracle=meta["oracle"],
                    model=meta.get("model", "none"), started=float(result["started"]),
                    finished=float(result["finished"]), seconds=float(result["seconds"]))
        model_energy = meta.get("model_energy")
        if model_energy is not None and math.isfinite(model_energy):
            base["model_energy"] = float(model_energy)
        with self.db as db:  # one transaction: a kill leaves all frames or none
            if result["status"] != "ok":
                db.write(result["atoms"], key_value_pairs=dict(base, frame=0, status="failed",
                                                               origin=meta["origin"]),
                         data={"error": result["error"][:2000]})
                return
            for k, atoms in enumerate(result["frames"]):
                e = enthalpy_per_atom(atoms.get_potential_energy(), atoms.get_volume(), len(atoms), pressure)
                origin = "relax" if k > 0 and meta["origin"] == "ga" else meta["origin"]  # "relax": training data
                kv = dict(base, frame=k, status="ok", origin=origin,
                          oracle_energy=float(e), **({"pressure": pressure} if pressure else {}))
                if k == 0 and "model_energy" in base and is_potential(meta.get("model")):
                    kv["well_predicted"] = bool(abs(e - base["model_energy"]) < float(meta.get("min_loss", 0.0)))
                data = {}
                if k == 0 and result.get("error"):  # the relaxation failed after these frames
                    kv["relax_failed"] = True
                    data = {"error": result["error"][:2000]}
                db.write(atoms, key_value_pairs=kv, data=data)

    def rows(self, **selection):
        """Rows in id order."""
        return sorted(self.db.select(**selection), key=lambda r: r.id)

    def labelled_atoms(self) -> list[Atoms]:
        """Every structure labelled ok, all frames (for duplicate checks)."""
        return [r.toatoms() for r in self.rows(status="ok")]


def _scrub(text: str, url: str) -> str:
    parts = urlsplit(url) if "://" in url else None
    if parts is not None and parts.password:
        text = text.replace(parts.password, "***")
    pw = os.environ.get("PGPASSWORD")
    if pw:
        text = text.replace(pw, "***")
    return text
