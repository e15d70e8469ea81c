from setuptools import find_packages, setup

# mweralign and OmniSTEval: long-form re-segmentation and LongYAAL (eval/longform.py)
EVAL = ["simuleval==1.1.4", "sacrebleu>=2.4,<3", "matplotlib", "tqdm", "mweralign==1.4.1", "omnisteval==0.1.10"]

setup(
    name="psfuture",
    version="0.1.0",
    description="Simultaneous machine translation with the PsFuture read/write policy",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["psfuture", "psfuture.*"]),
    package_data={"psfuture": ["web/*"]},
    install_requires=[
        # The CPU wheel on local disk; any other spec pulls a multi-GB CUDA build.
        "torch==2.13.0",
        # Upstream fairseq main built for Python 3.11 (fairseq 0.12.2 does not import on 3.11). It requires
        # torchaudio, which has no build for this CPU torch: `make setup` uninstalls it (see the Makefile).
        "ve-fairseq==0.12.3",
        "sentencepiece>=0.2",
        "websockets>=13,<16",
        "numpy",
        "lxml",  # psfuture.corpus parses the help pages (training data)
        "srt>=3.5,<4", "webvtt-py>=0.5,<0.7",  # psfuture.subtitles: translate --srt/--vtt, a live room's subtitles
    ],
    extras_require={
        # Research beside the runtime: the SimulEval agents, sweeps, reports, significance, plots (psfuture.experiments,
        # eval/). `pip install psfuture` alone serves and translates.
        "eval": EVAL,
        # Hugging Face seq2seq models (psfuture.backends.hf); pinned: the adapter relies on its cache classes.
        "hf": ["transformers==5.23.0"],
        # The side-by-side anchor (eval/bench_ct2.py, psfuture.backends.ct2); CPU wheel, no torch.
        "ct2": ["ctranslate2==4.8.5"],
        # Word alignments for P2F's aligned prefix targets (scripts/align_p2f.py).
        "align": ["eflomal==2.0.0"],
        "test": EVAL + ["eflomal==2.0.0", "pytest>=8,<9", "pytest-timeout", "selenium>=4.20", "transformers==5.23.0",
                        "ctranslate2==4.8.5"],
    },
    entry_points={"console_scripts": ["psfuture=psfuture.cli:main"]},
)
