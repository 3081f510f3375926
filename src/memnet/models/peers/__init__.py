"""Peers: the strongest learners without end-to-end backpropagation, run in the same DAG as the
Memory Network (same data files, splits, seeds, timing and memory accounting).

- ``"slda"``: streaming linear discriminant analysis (Hayes & Kanan, 2020), :mod:`.slda`.
- ``"rf_elm"``: an extreme learning machine with random local receptive fields (McDonnell et al.,
  2015), :mod:`.rf_elm`.
- ``"idm_knn"``: nearest neighbours under the image distortion model (Keysers et al., 2007),
  re-ranking Euclidean candidates, :mod:`.idm_knn`.
- ``"krotov_hopfield"``: competing hidden units learnt by a local rule without labels (Krotov &
  Hopfield, 2019), then a linear readout trained by gradient descent, :mod:`.krotov_hopfield`.

Each is a :class:`memnet.models.baselines.Baseline` (``fit``, ``partial_fit``, ``predict``) and a
family of :data:`memnet.models.registry.FAMILIES`; docs/model.md says what each published method
does, what we built and where ours departs.
"""
