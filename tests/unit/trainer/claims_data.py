"""A seeded, synthetic insurance-claims table with categorical columns and a fraud signal.

``claims_csv(n, seed)`` writes the same bytes for the same arguments (NumPy's PCG64). Columns:

* ``Month`` (``Jan`` .. ``Dec``, uniform), ``Make`` (12 makes, Zipf-like, ``Toyota`` the
  most common, and ``Ferrari``, ``Lamborghini``, ``Mécanique Ltd`` in one row each, so that a
  50/50 split leaves some of them in the test rows only; 3% of cells empty), ``PolicyType``
  (``Sedan - All Perils``, ``Sedan - Collision``, ``Sedan - Liability``, ``Sport -
  Collision``, ``Utility - All Perils``, written with a space or a tab around the text now
  and then), ``AreaCode`` (one of six numbers, categorical only when named by
  ``--categorical``), ``Amount`` (log-normal), ``Age`` (18 .. 80), ``fraud`` (0/1, about 4%);
* the fraud log-odds rise with sport and all-perils policies, with some makes, in December
  and with the amount, so every kind of column carries part of the signal.
"""

from __future__ import annotations

import numpy as np

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MAKES = ("Toyota", "Honda", "Ford", "Chevrolet", "Pontiac", "Mazda", "Accura", "VW",
         "Dodge", "Mercury", "Saab", "Nisson", "Ferrari", "Lamborghini", "Mécanique Ltd")
MAKE_RISK = {"Accura": 1.0, "Saab": 0.8, "Ferrari": 1.5, "Pontiac": 0.3, "Toyota": -0.2}
POLICIES = ("Sedan - All Perils", "Sedan - Collision", "Sedan - Liability",
            "Sport - Collision", "Utility - All Perils")
POLICY_RISK = (0.9, 0.2, -1.2, 1.3, 0.6)
AREA_CODES = (415, 510, 650, 707, 831, 925)
RARE_ROWS = (5, 17, 29)


def claims_csv(n: int = 1200, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(MAKES) - 2) ** 1.3
    make = rng.choice(len(MAKES) - 3, size=n, p=weights / weights.sum())
    for k, row in enumerate(RARE_ROWS):  # the last three makes: one row each
        if row < n:
            make[row] = len(MAKES) - 3 + k
    month = rng.integers(0, 12, n)
    policy = rng.integers(0, len(POLICIES), n)
    area = rng.integers(0, len(AREA_CODES), n)
    amount = np.round(np.exp(rng.normal(7.0, 0.8, n)), 2)
    age = rng.integers(18, 81, n)
    logit = (-4.2 + np.array([MAKE_RISK.get(m, 0.0) for m in MAKES])[make]
             + np.array(POLICY_RISK)[policy] + 0.8 * (month == 11)
             + 0.6 * (np.log(amount) - 7.0) + 0.4 * (area == 2))
    fraud = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    missing_make = rng.random(n) < 0.03
    padded = rng.random(n) < 0.1
    lines = ["Month,Make,PolicyType,AreaCode,Amount,Age,fraud"]
    for i in range(n):
        make_cell = "" if missing_make[i] else MAKES[make[i]]
        policy_cell = POLICIES[policy[i]]
        if padded[i]:
            policy_cell = f" {policy_cell}\t"
        lines.append(f"{MONTHS[month[i]]},{make_cell},\"{policy_cell}\",{AREA_CODES[area[i]]},"
                     f"{float(amount[i])!r},{age[i]},{fraud[i]}")
    return ("\n".join(lines) + "\n").encode("utf-8")
