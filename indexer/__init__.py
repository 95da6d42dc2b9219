"""Build-time: scan a media root, decode, embed, write the index incrementally."""
