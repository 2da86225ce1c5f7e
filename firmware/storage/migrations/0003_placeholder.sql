-- Placeholder for migration 0003, which a parallel branch ships; migrations are
-- numbered without gaps. Delete this file when that branch's 0003 is merged.
SELECT 1;
