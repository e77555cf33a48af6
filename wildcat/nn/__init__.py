"""The WILDCAT model (Section 3): backbones, the multi-map transfer layer, class-wise and spatial pooling."""
