"""The decoder families' names, in one TensorFlow-free place.

The CLI parses `--likelihood` against these names without importing
TensorFlow, `tfvae.heads` registers one head per name (a test keeps the two
equal), and the benchmarks iterate over them.
"""

GAUSSIAN = "gaussian"
GAUSSIAN_SHARED = "gaussian_shared"
LAPLACE = "laplace"
STUDENT_T = "student_t"
MSE = "mse"

# Every decoder family, in the order the README's tables use.
NAMES = (GAUSSIAN, GAUSSIAN_SHARED, LAPLACE, STUDENT_T, MSE)

# The default family: see the README's benchmark ("Which likelihood when").
DEFAULT = STUDENT_T

DESCRIPTIONS = {
    GAUSSIAN: "Normal with a mean and a scale per feature, both functions of z",
    GAUSSIAN_SHARED: "Normal with mean(z) and a learned per-feature scale "
                     "that does not depend on z (sigma-VAE)",
    LAPLACE: "Laplace with loc(z) and scale(z): sharp peaks, exponential tails",
    STUDENT_T: "Student's t with loc(z), scale(z) and learned per-feature "
               "degrees of freedom: heavy tails",
    MSE: "the original snippet's MSE + 1e-4 * KL objective (a Normal with a "
         "fixed scale), for comparison only",
}


def check_family(name):
  """Returns `name` if it is a family, else raises a `ValueError` listing them."""
  if name not in NAMES:
    raise ValueError(
        f"unknown likelihood {name!r}; expected one of {', '.join(NAMES)}")
  return name


# How Student's t's degrees of freedom are learned (`heads.StudentTLikelihood`).
DF_TRANSFORMS = ("softplus", "exp")


def check_df_transform(df_transform):
  """Returns `df_transform`, or raises `ValueError` if it is not one of
  `DF_TRANSFORMS`."""
  if df_transform not in DF_TRANSFORMS:
    raise ValueError(f"df_transform must be one of {DF_TRANSFORMS}, got "
                     f"{df_transform!r}")
  return df_transform
