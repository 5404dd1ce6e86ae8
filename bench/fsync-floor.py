#!/usr/bin/env python3
"""The disk's floor under a durable append: `pwrite` of N 4 KiB pages then `fdatasync`,
repeated, on a file in DIR (default: the system's temporary folder, where the load tools
put aim's data). A durable decision cannot be answered faster than one of these.

    python3 bench/fsync-floor.py [DIR] [--count 3000]
"""

import argparse
import os
import statistics
import tempfile
import time


def run(directory, pages, count):
    fd, path = tempfile.mkstemp(dir=directory, prefix="fsync-floor-")
    try:
        block = os.urandom(4096 * pages)
        os.pwrite(fd, block * 64, 0)
        os.fsync(fd)
        lat = []
        for i in range(count):
            offset = (i % 64) * len(block)
            started = time.perf_counter_ns()
            os.pwrite(fd, block, offset)
            os.fdatasync(fd)
            lat.append((time.perf_counter_ns() - started) / 1000)
        lat.sort()
        return {
            "p50_us": lat[len(lat) // 2],
            "p99_us": lat[int(len(lat) * 0.99)],
            "mean_us": statistics.fmean(lat),
        }
    finally:
        os.close(fd)
        os.unlink(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", default=tempfile.gettempdir())
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    for pages in (1, 8, 16):
        r = run(args.dir, pages, args.count)
        print(f"pwrite {pages:>2} page(s) + fdatasync in {args.dir}: "
              f"p50 {r['p50_us']:.0f} µs  p99 {r['p99_us']:.0f} µs  mean {r['mean_us']:.0f} µs  ({args.count} runs)")


if __name__ == "__main__":
    main()
