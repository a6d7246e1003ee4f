"""Local peers (fake Twilio, SMTP server) shared by the demo, tests and benchmark."""
