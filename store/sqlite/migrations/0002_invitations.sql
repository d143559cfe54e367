-- 0002: placeholder for the invitations migration of the consent change
-- (branch i5-consent), which replaces this file when the branches merge.
-- Migrations must run without gaps, and 0003 follows.
SELECT 1;
