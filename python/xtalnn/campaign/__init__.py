"""Active-learning crystal structure search (the seed paper's section 3).

GA (fitness = the newest potential, the empirical model before the first) → oracle labelling (any
ASE calculator) → ``ase.db`` (SQLite or PostgreSQL) → retraining (warm start), cycle after cycle
until converged, then a long GA whose best structures per crystal system are relabelled and ranked.

>>> from xtalnn.campaign import load_config, run
>>> result = run(load_config("examples/si/fast.toml"), "si8_campaign")   # doctest: +SKIP

Modules: :mod:`.config` (TOML settings), :mod:`.executor` (local processes / Dask),
:mod:`.ga` (GA jobs, duplicates), :mod:`.labelling` (oracle jobs), :mod:`.storage` (the database),
:mod:`.training` (one model per cycle, warm start), :mod:`.loop` (the campaign),
:mod:`.report` (Markdown/HTML, CIFs, PNGs), :mod:`.cli`.
"""

from xtalnn.campaign.config import CampaignConfig, ConfigError, from_dict
from xtalnn.campaign.config import load as load_config
from xtalnn.campaign.loop import CampaignResult, run
from xtalnn.campaign.report import write_report

__all__ = ["CampaignConfig", "CampaignResult", "ConfigError", "from_dict", "load_config", "run", "write_report"]
