"""Fit time of implicit's BPR on MovieLens-100K, the peer `chatrec bench train --models bpr` is
compared with (docs/results.md). Same data as the bench (every rating of u.data as an interaction),
64 factors, 100 epochs; prints the median of --repeats fits per thread count.

    python3 -m venv .peer-venv && .peer-venv/bin/pip install implicit==0.7.3 scipy
    .peer-venv/bin/python bench/peers/implicit_bpr.py --threads 1,2
"""
import argparse
import os
import statistics
import time

import numpy as np
import scipy.sparse as sp
from implicit.bpr import BayesianPersonalizedRanking


def load(data_dir):
    rows, cols = [], []
    with open(os.path.join(data_dir, "ml-100k", "u.data")) as f:
        for line in f:
            u, i, _r, _t = line.split("\t")
            rows.append(int(u) - 1)
            cols.append(int(i) - 1)
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), dtype=np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("CHATREC_DATA_DIR", "data"))
    p.add_argument("--threads", default="1,2")
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    user_items = load(a.data_dir)
    print(f"implicit BPR on ml-100k: {user_items.shape[0]} users, {user_items.shape[1]} items, "
          f"{user_items.nnz} interactions, {a.factors} factors, {a.epochs} epochs")
    for threads in [int(t) for t in a.threads.split(",")]:
        times = []
        for r in range(a.repeats):
            model = BayesianPersonalizedRanking(factors=a.factors, iterations=a.epochs,
                                                num_threads=threads, random_state=r,
                                                verify_negative_samples=True)
            t0 = time.perf_counter()
            model.fit(user_items, show_progress=False)
            times.append(time.perf_counter() - t0)
        print(f"threads {threads}: fit {statistics.median(times):.3f} s (median of {a.repeats}: "
              + ", ".join(f"{t:.3f}" for t in times) + ")")


if __name__ == "__main__":
    main()
