-- What a running sync has done so far, for the sources page (cleared when it ends).
ALTER TABLE sources ADD COLUMN progress TEXT;
