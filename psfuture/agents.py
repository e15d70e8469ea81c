"""SimulEval 1.1.4 agents: thin adapters from SimulEval's word-by-word loop to a psfuture Session.

    simuleval --agent-class psfuture.agents.PsFutureAgent --source src.de --target ref.en \\
        --output out --threshold 0.3 [--checkpoint DIR]

SimulEval owns the delays: each policy() call either writes all words the session completed since
the last call (one WriteAction) or reads. Every agent takes --checkpoint (default: the shipped
model or $PSFUTURE_MODEL), --max-len-a/--max-len-b, and its policy's settings as options.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import ClassVar

from simuleval.agents import TextToTextAgent
from simuleval.agents.actions import ReadAction, WriteAction

from psfuture.backends import ModelBackend, ModelSpec, load
from psfuture.policies import AlignAtt, LocalAgreement, Offline, Policy, PsFuture, WaitK
from psfuture.session import Session, State

_MODELS: dict[ModelSpec, ModelBackend] = {}  # one loaded model per checkpoint, shared by agents in a process


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _optional_int(value: str) -> int | None:
    return None if value.lower() in ("none", "last") else int(value)


def add_policy_args(parser: argparse.ArgumentParser, cls: type[Policy]) -> None:
    """One --option per policy setting, named and typed after the dataclass field."""
    for f in dataclasses.fields(cls):
        kind = {bool: _flag, int: int, float: float, str: str}.get(type(f.default), _optional_int)
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default,
                            help=f"{cls.name} setting {f.name} (default: {f.default})")


def policy_from_args(cls: type[Policy], args: argparse.Namespace) -> Policy:
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


class SessionAgent(TextToTextAgent):
    """Base adapter; subclasses only name their policy class."""

    policy_class: ClassVar[type[Policy]]

    def __init__(self, args: argparse.Namespace):
        spec = ModelSpec.from_args(args)
        if spec not in _MODELS:
            _MODELS[spec] = load(spec)
        self.model = _MODELS[spec]
        self.rw_policy = policy_from_args(self.policy_class, args)
        self.max_len = (args.max_len_a, args.max_len_b)
        super().__init__(args)  # calls reset(), which needs the model and policy

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        ModelSpec.add_args(parser, path_flag="--checkpoint")
        parser.add_argument("--max-len-a", type=float, default=2.0, help="target cap: a * source pieces + b")
        parser.add_argument("--max-len-b", type=int, default=10)
        add_policy_args(parser, cls.policy_class)

    def reset(self) -> None:
        super().reset()
        self.session = Session(self.model, self.rw_policy, max_len_a=self.max_len[0], max_len_b=self.max_len[1])

    def policy(self):
        s, states = self.session, self.states
        new = states.source[len(s.source_words):]
        if s.state is State.READING:
            # On the last word go straight to finishing, exactly as SimulEval presents it (the CLI does the
            # same with a line's last word, so both give the same English).
            s.push(new, run=not states.source_finished)
            if states.source_finished:
                s.finish()
        words = s.pop()
        done = s.state is State.DONE
        if words or done:
            return WriteAction(" ".join(words), finished=done)
        return ReadAction()


class PsFutureAgent(SessionAgent):
    policy_class = PsFuture


class OfflineAgent(SessionAgent):
    policy_class = Offline


class WaitKAgent(SessionAgent):
    policy_class = WaitK


class LocalAgreementAgent(SessionAgent):
    policy_class = LocalAgreement


class AlignAttAgent(SessionAgent):
    policy_class = AlignAtt


def evaluate(agent_class: type[SessionAgent], config: dict) -> dict:
    """Run SimulEval's evaluator on an agent from Python and return its scores, e.g.
    evaluate(PsFutureAgent, {"source": "src.de", "target": "ref.en", "threshold": 0.3}).
    Leave out "output" to get a real ATD (SimulEval 1.1.4 scores text ATD as 0 from its log)."""
    from simuleval.evaluator import build_evaluator
    from simuleval.utils.agent import EVALUATION_SYSTEM_LIST, build_system_args

    argv, sys.argv = sys.argv, sys.argv[:1]  # SimulEval parses the real command line too
    EVALUATION_SYSTEM_LIST[:] = [agent_class]
    # SimulEval turns True into a bare flag and drops False; our boolean settings take a value.
    settings = {f.name for f in dataclasses.fields(agent_class.policy_class)}
    config = {k: (str(v).lower() if k in settings and isinstance(v, bool) else v) for k, v in config.items()}
    try:
        system, args = build_system_args(config)
        evaluator = build_evaluator(args)
        evaluator(system)
        return {name: values[0] for name, values in evaluator.results.to_dict("list").items()}
    finally:
        sys.argv = argv
        EVALUATION_SYSTEM_LIST.clear()
