"""Inference with a trained VAE, written once: importance sampling and the
marginal log-likelihood (`importance`), imputation (`imputation`),
generation (`sampling`), and what a score means next to held-out rows
(`calibration`: percentiles, thresholds).

Each function takes the model and uses only its public steps
(`standardize`, `posterior_from_standard`, `standard_likelihood_parameters`,
`data_likelihood_parameters`, `log_likelihood`); the model's own methods
(`marginal_log_likelihood`, `anomaly_score`, `impute`, `sample`), the
exported scorer and the file commands all call these functions, so they
agree by construction. `methods.InferenceMethods` holds the model's own
methods, a mixin of `tfvae.VAE`.
"""
