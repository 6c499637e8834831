"""``xtalnn descriptors``: compute ACSF or Chebyshev descriptors of structures, save as .npz."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("descriptors", help="compute descriptors of structures and save them (.npz)")
    p.add_argument("data", nargs="+", help="structure source(s): XSF file/folder/tar.gz, ASE db, any ASE file")
    p.add_argument("--kind", choices=("acsf", "chebyshev"), default="acsf")
    p.add_argument("--elements", nargs="+", help="element order (default: sorted elements found)")
    p.add_argument("--cutoff", type=float, default=6.5, help="cutoff radius, Å (ACSF; Chebyshev radial)")
    p.add_argument("--angular-cutoff", type=float, default=None, help="Chebyshev angular cutoff, Å")
    p.add_argument("--radial-order", type=int, default=10)
    p.add_argument("--angular-order", type=int, default=4)
    p.add_argument("--limit", type=int, default=None, help="read at most this many structures per source")
    p.add_argument("-o", "--output", default="descriptors.npz")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from xtalnn.descriptors import ACSF, Chebyshev
    from xtalnn.io.structures import read_structures

    structures = [a for path in args.data for a in read_structures(path, args.limit)]
    elements = args.elements or sorted({s for a in structures for s in a.get_chemical_symbols()})
    if args.kind == "acsf":
        descriptor = ACSF.default(elements, args.cutoff)
    else:
        descriptor = Chebyshev(elements, args.cutoff, args.radial_order, args.angular_cutoff or args.cutoff,
                               args.angular_order)
    blocks = [descriptor.compute(a) for a in tqdm(structures, desc="descriptors", unit="structure")]
    np.savez_compressed(
        args.output,
        descriptors=np.concatenate(blocks),
        structure_index=np.repeat(np.arange(len(blocks)), [len(b) for b in blocks]),
        symbols=np.array([s for a in structures for s in a.get_chemical_symbols()]),
        feature_labels=np.array(descriptor.feature_labels()),
        elements=np.array(elements),
    )
    n_atoms = sum(len(b) for b in blocks)
    print(f"{len(structures)} structures, {n_atoms} atoms × {descriptor.n_features} features → {args.output}")
    return 0
