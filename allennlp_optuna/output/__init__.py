"""What a user reads: the live console, the end-of-study summary, what ``best-params`` prints, and
the HTML report with its trials CSV."""
