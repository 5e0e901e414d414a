"""Call records, recordings storage, transcription jobs."""
