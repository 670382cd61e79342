"""The Qt desktop application. Widgets live on the GUI thread; background work (opening and analysing
images, folder scans, batches) runs as ``tasks.SerialExecutor`` tasks whose results, progress and
exceptions ``qt_tasks.TaskBridge`` delivers back on the GUI thread."""
