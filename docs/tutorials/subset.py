"""The composition tutorial's data: 4,000 random rows of the OQMD formation-enthalpy table (seeded)."""

import csv
import gzip
import random

with gzip.open("../shared/data/oqmd_formation_enthalpy_51k.csv.gz", "rt") as fh:
    header, *rows = list(csv.reader(fh))
random.Random(0).shuffle(rows)
with open("oqmd_4k.csv", "w", newline="") as fh:
    csv.writer(fh).writerows([header] + rows[:4000])
