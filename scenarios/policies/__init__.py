"""Policies: one class per file, registered by name (see :mod:`scenarios.policies.contract`).

Public API::

    from scenarios.policies import Decision, InvalidDecision, Policy, RoundView, register_policy
    from scenarios.policies import available, default_policy, names, policy_class
"""
from scenarios.policies.contract import Decision, InvalidDecision, Policy, RoundView
from scenarios.policies.registry import available, default_policy, names, policy_class, register_policy

__all__ = ["Decision", "InvalidDecision", "Policy", "RoundView", "available", "default_policy", "names", "policy_class",
           "register_policy"]
