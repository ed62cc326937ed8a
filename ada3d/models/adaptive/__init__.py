"""Ada3D adaptive inference: importance predictor, spatial filter, sparsity-preserving BatchNorm."""
