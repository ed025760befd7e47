"""The SNAS search on Tune: `searcher` (the search's Tune settings), `study` (its Optuna study: opened,
rebuilt, warm-started), `study_searcher` (Ray's `OptunaSearch` on that study, pickled without its sampler)
and `replay` (a configuration proposed again is answered with its earlier result, not trained twice)."""
