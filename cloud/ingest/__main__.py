from cloud.ingest.cli import app

app(prog_name="python -m cloud.ingest")
