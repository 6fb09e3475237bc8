-- Pending rows of a VPD overtaken by a newer pending or in-flight row of the same person and competence.
SELECT o.id, o.state FROM outbound_ledger o
WHERE o.vpd = :vpd AND o.state = 'pending'
  AND EXISTS (SELECT 1 FROM outbound_ledger n
              WHERE n.vpd = o.vpd AND n.person_id = o.person_id AND n.competence_id = o.competence_id
                AND n.date_achieved > o.date_achieved
                AND n.state IN ('pending', 'written', 'confirmed', 'unconfirmed'))
ORDER BY o.id
