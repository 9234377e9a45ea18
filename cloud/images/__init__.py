"""Camera images in the cloud (issue 18, docs/cameras.md): the receiver of
``akita/v1/<gateway>/image``, the content-addressed file store with its relational index
and retention, and what the API serves from it."""
