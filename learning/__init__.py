"""learning: real split federated LoRA fine-tuning of a timm ViT with semantic token selection.

Never imports simpy or :mod:`netsim`; exposes numbers (FLOPs, bits, retention curves,
accuracy) and takes decisions (token budgets) as plain values.
"""
