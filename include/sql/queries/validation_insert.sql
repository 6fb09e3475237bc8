-- One expectation result.
INSERT INTO validation_results (run_id, try_number, file_name, vpd, record_type, expectation,
                                column_name, severity, success, unexpected_count,
                                element_count, details_path, at)
VALUES (:run_id, :try_number, :file_name, :vpd, :record_type, :expectation,
        :column_name, :severity, :success, :unexpected_count,
        :element_count, :details_path, :at)
