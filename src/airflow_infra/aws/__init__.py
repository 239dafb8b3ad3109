"""boto3 at our boundary (clients.py: clients, retries, AWS answers as kinds of ours), what an
S3-compatible store can do (s3stores.py), and the certificate authorities of RDS (rdsca.py)."""
