"""The network: embeddings, the shared and branch encoders, symmetric tensor attention, heads."""
