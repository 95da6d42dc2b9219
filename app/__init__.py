"""What people touch: the `gridrank` command line and the Gradio web UI."""
