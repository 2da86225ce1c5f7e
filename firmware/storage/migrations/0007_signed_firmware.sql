-- SignedUpdateFirmware (OCPP 1.6 Security Whitepaper) shares the one firmware job
-- with UpdateFirmware: kind 'signed' carries the requestId every
-- SignedFirmwareStatusNotification repeats, the installDateTime, and the signing
-- certificate and signature checked against the file before it is installed.
ALTER TABLE firmware_update ADD COLUMN kind TEXT NOT NULL DEFAULT 'plain';
ALTER TABLE firmware_update ADD COLUMN request_id INTEGER;
ALTER TABLE firmware_update ADD COLUMN install_at TEXT;
ALTER TABLE firmware_update ADD COLUMN signing_certificate TEXT;
ALTER TABLE firmware_update ADD COLUMN signature TEXT;
