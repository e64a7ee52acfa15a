"""learning: real split federated LoRA fine-tuning of a timm ViT with semantic token selection.

Never imports simpy or :mod:`netsim`; exposes numbers (FLOPs, bits, retention curves,
accuracy) and takes decisions (token budgets) as plain values.

Modules, one concept each:

* :mod:`learning.data` -- data sets held as uint8, Dirichlet and IID partitions.
* :mod:`learning.split_vit` -- the timm ViT cut into device and server parts, with peft LoRA.
* :mod:`learning.tokens` -- [CLS]-attention importance, selection policies, fusion, retention.
* :mod:`learning.quantize` -- per-token min-max quantisation and the payloads' bits.
* :mod:`learning.split_step` -- one training step, split at the cut or whole.
* :mod:`learning.costs` -- FLOPs and bits of a step, measured on the real code path.
* :mod:`learning.federated` -- the :class:`~learning.federated.Learner`.
* :mod:`learning.batched` -- a round's independent devices trained together (stacked adapters, vmap).
* :mod:`learning.device_loop` -- a round's devices trained one after the other (every strategy).
* :mod:`learning.sample_cache` -- a frozen device part computed once per training sample.
* :mod:`learning.activation_cache` -- a frozen device part's outputs reused per batch.
* :mod:`learning.optimizer` -- the local optimiser from the learner's settings.
* :mod:`learning.strategies` -- how local results become the model (split-federated, ...).
* :mod:`learning.pretrain` -- backbone weights: own pretraining (cached), timm, file.
"""
