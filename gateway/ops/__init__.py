"""Running the gateway for years on a small machine: systemd's notifications (notify.py), backups and their
restore (backup.py), and the checks of a deployment (doctor.py)."""
