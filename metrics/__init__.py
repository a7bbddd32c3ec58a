"""Sample-quality metrics. They see only images or features, never how the images were made."""
